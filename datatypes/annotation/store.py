"""Key space of the annotation datatype and a read-modify-write cache over it.

TKey classes (payloads fixed-width or NUL-terminated, see :mod:`dvidpy.keys`):

* ``BLOCK_CLASS`` (210): block coordinate as three big-endian ``coord - INT32_MIN`` u32 in
  Z, Y, X order (raster order = key order) -> :class:`ElemList` of full elements.
* ``LABEL_CLASS`` (211): body id u64 big-endian -> :class:`ElemList` of elements without
  relationships (DVID's label denormalization).
* ``TAG_CLASS`` (212): tag UTF-8 + ``0x00`` -> :class:`ElemList` without relationships.

All three are versioned like any key; an emptied list is deleted (tombstoned).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import numpy as np

from datatypes.annotation.elements import ElemList
from datatypes.common import blockscan
from dvidpy.errors import BadRequest
from dvidpy.keys import tkey
from dvidpy.versioned import VersionedBatch, VersionedCtx, VersionedStore

BLOCK_CLASS = 210
LABEL_CLASS = 211
TAG_CLASS = 212


def block_tkey(x: int, y: int, z: int) -> bytes:
    """TKey of the element list of block ``(x, y, z)`` (the layout of
    :mod:`datatypes.common.blockscan`)."""
    return blockscan.block_tkey(BLOCK_CLASS, x, y, z)


decode_block_tkey = blockscan.decode_block_tkey


def label_tkey(label: int) -> bytes:
    """TKey of the element list of body ``label``."""
    return tkey(LABEL_CLASS, int(label).to_bytes(8, "big"))


def decode_label_tkey(tk: bytes) -> int:
    """Inverse of :func:`label_tkey`."""
    return int.from_bytes(tk[2:10], "big")


def tag_tkey(tag: str) -> bytes:
    """TKey of the element list of ``tag`` (tags can't contain NUL: 400)."""
    raw = tag.encode()
    if b"\x00" in raw:
        raise BadRequest("tags can't contain NUL characters")
    return tkey(TAG_CLASS, raw + b"\x00")


def class_range(cls: int) -> tuple[bytes, bytes]:
    """``[start, end)`` TKeys covering one class."""
    return bytes((cls, 1)), bytes((cls, 2))


def decode_list(raw: bytes | None, what: str) -> ElemList:
    """A stored list (empty when ``raw`` is None); 400 when corrupt."""
    if raw is None:
        return ElemList.empty()
    try:
        return ElemList.decode(raw)
    except (ValueError, struct.error) as e:
        raise BadRequest(f"stored {what} is corrupt: {e}") from None


class Txn:
    """Element lists read at one context, edited in memory, written in one batch.

    ``get`` returns the current (possibly already edited) list of a TKey; ``set``
    replaces it. ``write`` queues every changed list into a batch (empty lists become
    deletes). Reads of TKeys already cached never touch the store again.
    """

    def __init__(self, store: VersionedStore, ctx: VersionedCtx) -> None:
        self.store = store
        self.ctx = ctx
        self.cache: dict[bytes, ElemList] = {}
        self.dirty: set[bytes] = set()

    def load(self, tks: Iterable[bytes]) -> None:
        """Fetch the TKeys not cached yet with one batched read."""
        want = [t for t in dict.fromkeys(tks) if t not in self.cache]
        if want:
            for t, raw in zip(want, self.store.get_many(self.ctx, want), strict=True):
                self.cache[t] = decode_list(raw, "element list")

    def get(self, tk: bytes) -> ElemList:
        """The list under ``tk`` (empty when absent)."""
        if tk not in self.cache:
            self.load([tk])
        return self.cache[tk]

    def set(self, tk: bytes, lst: ElemList) -> None:
        """Replace the list under ``tk``."""
        self.cache[tk] = lst
        self.dirty.add(tk)

    def write(self, b: VersionedBatch) -> None:
        """Queue the changed lists into ``b``."""
        for tk in sorted(self.dirty):
            lst = self.cache[tk]
            if len(lst):
                b.put(tk, lst.encode())
            else:
                b.delete(tk)


def group_rows(keys: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Unique rows of ``keys`` ((N, k) or (N,)) and, for each, the indices holding it."""
    if keys.shape[0] == 0:
        return keys[:0], []
    uniq, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    order = np.argsort(inv.reshape(-1), kind="stable")
    return uniq, np.split(order, np.cumsum(counts)[:-1])


__all__ = ["BLOCK_CLASS", "LABEL_CLASS", "TAG_CLASS", "Txn", "block_tkey", "class_range",
           "decode_block_tkey", "decode_label_tkey", "decode_list", "group_rows",
           "label_tkey", "tag_tkey"]
