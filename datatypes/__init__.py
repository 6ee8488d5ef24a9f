"""Built-in datatypes. Importing this package registers them (DVID's blank imports)."""

from datatypes import keyvalue

__all__ = ["keyvalue"]
