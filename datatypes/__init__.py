"""Built-in datatypes. Importing this package registers them (DVID's blank imports)."""

from datatypes import keyvalue, roi, uint8blk
from datatypes.labelmap import datatype as labelmap

__all__ = ["keyvalue", "labelmap", "roi", "uint8blk"]
