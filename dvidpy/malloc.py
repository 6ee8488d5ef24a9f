"""Process-wide tuning of glibc's allocator for a server that handles block-sized buffers.

glibc serves every allocation above ``M_MMAP_THRESHOLD`` (128 KiB at start) with a fresh
``mmap`` and gives it back with ``munmap`` when freed, so each new buffer costs one page
fault per 4 KiB page, zeroed by the kernel. A uint8blk block of 64³ is 256 KiB, a decoded
labelmap block 2 MiB: every GET of one block allocated three such buffers (the stored
value, the decompressed bytes, the answer) and paid ~200 page faults. glibc raises the
threshold by itself only after freeing such a chunk, which the interleaved allocations of
a server rarely let it use. Measured in process, ``GET raw`` of one 64³ LZ4 block: 662 µs
per request before, 160 µs after (LZ4 decompression alone 568 → 17 µs).

:func:`tune_allocator` fixes the threshold at :data:`MMAP_THRESHOLD` (buffers up to that
size come from the heap and are reused) and lets up to :data:`TRIM_THRESHOLD` of free
memory stay at the top of the heap. The threshold (4 MiB and a margin) also covers the
4 MiB slabs and pieces a big ``GET raw`` streams (one block layer of 256x256 uint8):
served from fresh mmaps they cost the read as much as decoding (in process, four such
slabs of an aligned 256³ box: 8.8 ms of CPU from fresh mmaps, 4.2-4.9 ms from the heap,
where the slab just freed is reused while still in cache). A 16 MiB threshold, tried,
raised the peak RSS of ``benchmarks/ingest.py`` (4 uploads, 64 MiB in flight) from 7.6x
to 10.8x the bytes in flight. Larger buffers (request bodies, which
:class:`dvidpy.http.body.BufferPool` reuses instead, and bigger slabs) are still mapped
and unmapped.

It also caps the number of heaps (*arenas*) at :data:`ARENA_MAX`. glibc gives a thread
that finds its arena busy a new one, up to 8 per core; each keeps its own free memory
(up to the trim threshold at its top, plus whatever lies between live chunks), so a
server whose request threads and encoder threads had each handled block-sized buffers
held many times the memory in use: an ingest's 4 parallel 16 MiB chunk writes took the
server's private memory (``RssAnon``) 193 MiB above its start on a fresh process (3.0x the
bytes in flight, ``benchmarks/ingest.py`` on LMDB), and building a pyramid as 4 parallel
tasks 842 MiB. Python allocates under the GIL, so threads rarely contend for an arena
anyway: in process, 32 writes of 16 MiB from 4 threads (LMDB) ran at 349-619 MiB/s with
two arenas and 391-464 MiB/s with one (noise on a shared machine), with 35-37 and 19-20
MiB of private memory above the start.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: allocations up to this size come from the heap (mallopt M_MMAP_THRESHOLD)
MMAP_THRESHOLD = (4 << 20) + (64 << 10)
#: free heap memory kept before it is returned to the OS (mallopt M_TRIM_THRESHOLD)
TRIM_THRESHOLD = 32 << 20
#: most malloc arenas (mallopt M_ARENA_MAX; glibc's default is 8 per core): one heap
ARENA_MAX = 1
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator() -> bool:
    """Apply the thresholds and the arena cap above when the C library is glibc; True
    when applied. Call it before the process starts threads (arenas already made stay).

    A no-op (False) elsewhere (macOS, musl) and on any failure: only speed depends on it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and \
        bool(mallopt(_M_ARENA_MAX, ARENA_MAX))
