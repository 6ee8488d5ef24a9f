"""Built-in datatypes. Importing this package registers them (DVID's blank imports)."""

from datatypes import annotation, imageblk, keyvalue, labelsz, roi, uint8blk
from datatypes.labelmap import datatype as labelmap

__all__ = ["annotation", "imageblk", "keyvalue", "labelmap", "labelsz", "roi", "uint8blk"]
