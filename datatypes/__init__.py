"""Built-in datatypes. Importing this package registers them (DVID's blank imports)."""

from datatypes import keyvalue, roi, uint8blk

__all__ = ["keyvalue", "roi", "uint8blk"]
