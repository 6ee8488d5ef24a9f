"""neuronjson: JSON documents per body with per-field stamps and queries (see
:mod:`datatypes.neuronjson.datatype` for the HTTP API)."""

from datatypes.neuronjson.datatype import NeuronJSON

__all__ = ["NeuronJSON"]
