"""Built-in datatypes. Importing this package registers them (DVID's blank imports)."""

from datatypes import annotation, keyvalue, labelsz, neuronjson, roi, tarsupervoxels, uint8blk
from datatypes.labelmap import datatype as labelmap

__all__ = ["annotation", "keyvalue", "labelmap", "labelsz", "neuronjson", "roi",
           "tarsupervoxels", "uint8blk"]
