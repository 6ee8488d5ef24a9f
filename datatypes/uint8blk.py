"""uint8blk: 8-bit grayscale, the first of DVID's imageblk family. Implemented, with the
other imageblk types, in :mod:`datatypes.imageblk`; this module keeps the name importable
(``from datatypes.uint8blk import Uint8Blk, block_tkey``)."""

from datatypes.imageblk import Uint8Blk, block_tkey, block_tkeys, decode_block_tkey

__all__ = ["Uint8Blk", "block_tkey", "block_tkeys", "decode_block_tkey"]
