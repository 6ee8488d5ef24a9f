"""dvidpy core: version DAG, versioned store, keys, config, datatype interface, CLI.

Dependency direction: :mod:`storage` (engines) ← :mod:`dvidpy` (versioning, repos) ←
:mod:`datatypes` (keyvalue, uint8blk, labelmap, ...) ← ``server.py`` (HTTP wiring).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
