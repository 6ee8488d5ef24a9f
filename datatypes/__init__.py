"""Built-in datatypes. Importing this package registers them (DVID's blank imports)."""

from datatypes import annotation, keyvalue, labelsz, roi, uint8blk
from datatypes.labelmap import datatype as labelmap

__all__ = ["annotation", "keyvalue", "labelmap", "labelsz", "roi", "uint8blk"]
