"""The ``labelmap`` datatype: 64-bit segmentation volumes and their wire codecs."""
