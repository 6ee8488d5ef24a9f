"""Built-in datatypes. Importing this package registers them (DVID's blank imports)."""

from datatypes import (
    annotation,
    imageblk,
    keyvalue,
    labelarray,
    labelsz,
    neuronjson,
    roi,
    tarsupervoxels,
    uint8blk,
)
from datatypes.labelmap import datatype as labelmap

__all__ = ["annotation", "imageblk", "keyvalue", "labelarray", "labelmap", "labelsz",
           "neuronjson", "roi", "tarsupervoxels", "uint8blk"]
