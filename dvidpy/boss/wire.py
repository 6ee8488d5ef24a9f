"""The Boss's cutout wire formats, decoded without trusting the bytes.

=============================  ==============================================================
``application/blosc``          blosc of the C-order voxel bytes ((t,) z, y, x). The Boss and
                               intern pass the *bit* width as blosc's typesize (8 for
                               uint8, 64 for uint64); blosc's header records whatever was
                               used and decompression does not depend on it, so either form
                               is accepted. Answers use typesize = bytes per voxel, which
                               shuffles whole voxels (better ratios, e.g. 51 vs 18 on
                               segmentation) and is read the same way. An answer blosc
                               would not shrink (EM-like noise: judged on a 1 MiB sample) is
                               sent as blosc's stored frame (header + the voxels), which is
                               what blosc itself makes of incompressible data, streamed
                               without a compression pass.
``application/blosc-python``   blosc of a pickled numpy array (``blosc.pack_array``). The
                               pickle is read by an unpickler that knows only numpy's array
                               and dtype reconstructors (anything else is a 400), never by
                               ``pickle.loads``.
``application/npygz``          zlib-compressed ``.npy`` (the Boss's name; ``zlib``, not gzip),
                               read with ``allow_pickle=False``
``image/jpeg``                 (answers only, uint8) the z slices stacked vertically into one
                               grayscale JPEG ``x`` wide and ``y * z`` high, quality 85
=============================  ==============================================================

Every decoder checks the size a body claims before inflating it (blosc's header, a bounded
``zlib`` stream), so a small body cannot expand into gigabytes, and answers 400 for
anything malformed.
"""

from __future__ import annotations

import io
import pickle
import zlib
from typing import Any

import numpy as np

from dvidpy.boss.errors import (
    DATA_DIMENSION_MISMATCH,
    DATATYPE_DOES_NOT_MATCH,
    BossError,
)

BLOSC = "application/blosc"
BLOSC_PYTHON = "application/blosc-python"
NPYGZ = "application/npygz"
JPEG = "image/jpeg"
FORMATS = (BLOSC, BLOSC_PYTHON, NPYGZ, JPEG)
BODY_FORMATS = (BLOSC, BLOSC_PYTHON, NPYGZ)
JPEG_QUALITY = 85
#: pickle overhead allowed on top of the voxels of a blosc-python body
_PICKLE_SLACK = 1 << 16


def _blosc() -> Any:
    import blosc

    return blosc


def _bad(msg: str, code: int = DATATYPE_DOES_NOT_MATCH) -> BossError:
    return BossError(msg, code)


def blosc_size(body: bytes | bytearray | memoryview) -> int:
    """The uncompressed size a blosc frame's header claims (400 when it is not one)."""
    b = _blosc()
    raw = bytes(body[:16])
    if len(raw) < 16:
        raise _bad("body is not blosc-compressed (shorter than a blosc header)")
    try:
        nbytes, cbytes, _ = b.get_cbuffer_sizes(raw)
    except Exception as e:
        raise _bad(f"body is not blosc-compressed: {e}") from None
    if cbytes != len(body):
        raise _bad(f"blosc header says {cbytes} compressed bytes, body has {len(body)}")
    return int(nbytes)


def _blosc_decompress(body: bytes | bytearray | memoryview) -> bytes:
    try:
        return _blosc().decompress(bytes(body))
    except Exception as e:
        raise _bad(f"Failed to decompress data: {e}. Verify the datatype/bitdepth of your "
                   "data matches the channel.") from None


#: blosc's codec for answers: LZ4 compresses about twice as fast as blosc's default
#: blosclz at the same level (64 MiB of smooth uint8 on 2 threads: 72 vs 154 ms) for
#: frames about 15 % bigger; every blosc decompressor (intern's, neuroglancer's) reads it.
#: A blosc built without LZ4 uses its default, blosclz.
CNAME = "lz4"


def encode_blosc(arr: np.ndarray, clevel: int = 5) -> bytes:
    """blosc of ``arr``'s C-order bytes, typesize = bytes per voxel, byte shuffle, the
    :data:`CNAME` codec."""
    a = np.ascontiguousarray(arr)
    return _blosc().compress(memoryview(a.reshape(-1).view(np.uint8)),
                             typesize=max(1, a.dtype.itemsize), clevel=clevel, shuffle=1,
                             cname=CNAME if CNAME in _blosc().cnames else "blosclz")


#: largest buffer one blosc frame holds (c-blosc's BLOSC_MAX_BUFFERSIZE)
BLOSC_MAX_BYTES = 2**31 - 1 - 16
#: blosc ratio below which an answer is sent as a stored (memcpyed) blosc frame
STORE_BELOW = 1.15
_SAMPLE = 1 << 20


def stored_header(nbytes: int, typesize: int) -> bytes:
    """The 16-byte header of a blosc frame that stores ``nbytes`` as they are (c-blosc's
    "memcpyed" frame, which ``blosc.compress`` itself writes for incompressible data):
    format version 2, blosclz 1, flags shuffle|memcpyed, the typesize, ``nbytes``, a
    block size, ``cbytes = nbytes + 16``. Any blosc decompressor reads it as a copy."""
    import struct

    if not 0 < nbytes <= BLOSC_MAX_BYTES:
        raise ValueError(f"a blosc frame holds 1..{BLOSC_MAX_BYTES} bytes, not {nbytes}")
    ts = max(1, min(255, typesize))
    block = max(ts, min(nbytes, 1 << 17) // ts * ts)
    return struct.pack("<BBBBIII", 2, 1, 0x03, ts, nbytes, block, nbytes + 16)


def worth_compressing(arr: np.ndarray) -> bool:
    """Whether blosc shrinks ``arr`` by at least :data:`STORE_BELOW` (judged on a sample
    of about 1 MiB from its middle; EM-like noise does not shrink, labels and empty space
    do)."""
    flat = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
    if flat.nbytes <= _SAMPLE:
        sample = flat
    else:
        mid = (flat.nbytes // 2) // max(1, arr.dtype.itemsize) * max(1, arr.dtype.itemsize)
        sample = flat[mid:mid + _SAMPLE]
    return len(encode_blosc(sample.view(arr.dtype))) * STORE_BELOW < sample.nbytes


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays only: every global outside numpy's reconstructors is
    refused (so no pickle can run code)."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"), ("codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a numpy array")
        return super().find_class(module, name)


def decode_array(data: bytes) -> np.ndarray:
    """A numpy array from pickle bytes, by :class:`_ArrayUnpickler` (400 otherwise)."""
    try:
        obj = _ArrayUnpickler(io.BytesIO(data)).load()
    except Exception as e:
        raise _bad(f"Failed to unpack data: {e}", DATA_DIMENSION_MISMATCH) from None
    if not isinstance(obj, np.ndarray):
        raise _bad(f"blosc-python body holds a {type(obj).__name__}, not a numpy array")
    return obj


def decode_body(media: str, body: bytes | bytearray | memoryview, dtype: np.dtype,
                shape: tuple[int, ...]) -> np.ndarray:
    """The voxels of a POSTed cutout in ``media`` (:data:`BODY_FORMATS`): an array of
    ``dtype`` and ``shape``; 400 (the Boss's codes) for anything else."""
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if media == BLOSC:
        claimed = blosc_size(body)
        if claimed != nbytes:
            raise _bad(f"Failed to unpack data: {claimed} bytes of blosc data, but {shape} "
                       f"voxels of {dtype.name} are {nbytes}. Verify the datatype of your "
                       "POSTed data and xyz dimensions used in the POST URL.",
                       DATA_DIMENSION_MISMATCH)
        raw = _blosc_decompress(body)
        if len(raw) != nbytes:
            raise _bad("blosc data decompressed to the wrong size", DATA_DIMENSION_MISMATCH)
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    if media == BLOSC_PYTHON:
        claimed = blosc_size(body)
        if claimed > nbytes + _PICKLE_SLACK:
            raise _bad(f"blosc-python body holds {claimed} bytes, more than {shape} voxels "
                       f"of {dtype.name} ({nbytes})", DATA_DIMENSION_MISMATCH)
        arr = decode_array(_blosc_decompress(body))
    elif media == NPYGZ:
        d = zlib.decompressobj()
        try:
            raw = d.decompress(bytes(body), nbytes + _PICKLE_SLACK + 1)
        except zlib.error as e:
            raise _bad(f"body is not zlib-compressed .npy: {e}") from None
        if len(raw) > nbytes + _PICKLE_SLACK or d.unconsumed_tail:
            raise _bad(f"npygz body inflates to more than {shape} voxels of {dtype.name}",
                       DATA_DIMENSION_MISMATCH)
        try:
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
        except Exception as e:
            raise _bad(f"body is not a .npy array: {e}") from None
    else:
        raise BossError(f"unsupported Content-Type {media!r}: use one of "
                        f"{', '.join(BODY_FORMATS)}", DATATYPE_DOES_NOT_MATCH)
    if arr.dtype.newbyteorder("<") != dtype.newbyteorder("<") or arr.dtype.kind != dtype.kind:
        raise _bad(f"Datatype does not match channel ({arr.dtype} sent, {dtype.name} "
                   "expected)")
    if tuple(arr.shape) != tuple(shape):
        raise _bad(f"Data dimensions in URL do not match POSTed data ({tuple(arr.shape)} "
                   f"sent, {tuple(shape)} in the URL)", DATA_DIMENSION_MISMATCH)
    return np.ascontiguousarray(arr, dtype=dtype)


def encode(media: str, arr: np.ndarray) -> bytes:
    """``arr`` (``(t, z, y, x)`` or ``(z, y, x)``) as an answer in ``media``."""
    if media == BLOSC:
        return encode_blosc(arr)
    if media == BLOSC_PYTHON:
        return _blosc().pack_array(np.ascontiguousarray(arr))
    if media == NPYGZ:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
        return zlib.compress(buf.getvalue(), 6)
    if media == JPEG:
        from datatypes.common import imagecodec

        nz, ny, nx = arr.shape
        try:
            return imagecodec.encode_jpeg(np.ascontiguousarray(arr).reshape(nz * ny, nx),
                                          JPEG_QUALITY)
        except ValueError as e:
            raise BossError(f"cannot make the JPEG: {e}") from None
    raise BossError(f"unsupported format {media!r}")


def negotiate(accept: str) -> str:
    """The answer format for an ``Accept`` header: the first of :data:`FORMATS` it names
    (``*/*``, ``application/*`` or nothing: blosc, the Boss's default); 400 when it names
    none of them."""
    if not accept.strip():
        return BLOSC
    wanted = []
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if q > 0:
            wanted.append((-q, len(wanted), media.strip().lower()))
    for _, _, media in sorted(wanted):
        if media in FORMATS:
            return media
        if media in ("*/*", "application/*"):
            return BLOSC
        if media == "image/*":
            return JPEG
    raise BossError(f"cannot answer Accept: {accept[:200]}; this cutout service answers "
                    f"{', '.join(FORMATS)}")
