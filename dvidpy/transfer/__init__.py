"""Repo push and pull between servers: full, flattened, instance- and ROI-filtered,
resumable, atomically visible; plus import from any DVID through its public HTTP API.

Protocol (HTTP, version 1; routes in :mod:`dvidpy.transfer.routes`)
---------------------------------------------------------------------
1. **Manifest.** The driver asks the source for the repo's manifest
   (``POST /api/transfer/manifest``): root UUID, repo fields, every node (UUID, parents and
   children as UUIDs, branch, note, log, lock, times; parents before children) and every
   instance (name, type, data UUID, versioned, compression, checksum, tags, syncs, config,
   ``included``). ``flatten`` reduces the DAG to the one chosen node as a locked root.
2. **Plan.** The driver posts the manifest to the receiver (``POST
   /api/transfer/receive``). The receiver refuses (409-style 400, nothing written) when a
   manifest UUID or data UUID exists locally with a different history (other repo, other
   parents, a diverged branch, another instance of that name). Otherwise it stages what it
   lacks in one metadata write: new nodes get fresh local VersionIDs, new instances fresh
   InstanceIDs (UUIDs are kept; numeric ids are always remapped). It answers with *groups*
   ``(instance, [version UUIDs])`` it still needs - (instance, version) pairs it already
   holds completely are left out, so re-pushing an unchanged repo moves nothing - and each
   group's restart key from an earlier, interrupted attempt.
3. **Stream.** For each group the driver opens ``POST /api/transfer/stream`` on the
   source, which scans the instance's key range once and selects keys whose version
   suffix is in the group (``flatten``: the versioned view at that version, rewritten to
   the single root; ``roi``: see *ROI filtering* below). Records
   are ``klen|tkey|version-index|marker|vlen|value`` (tombstones included), where the
   version index points into the group's UUID list; they travel in chunks of at most
   ~8 MiB (bounded by the receiver's ``maxRequestBytes``) framed with a CRC32
   (:mod:`dvidpy.transfer.protocol`) and end with an end frame.
4. **Apply.** Each chunk is posted to ``POST /api/transfer/receive/{tid}/{gid}``; the
   receiver checks the CRC and framing (a bad chunk is rejected whole), rewrites each key
   to ``0x01|local iid|tkey|local version|marker``, commits it as one engine batch, then
   records the group's progress (last TKey). The end frame marks the group done.
   With ``roi``, instances whose datatype has a spatial
   :meth:`~dvidpy.datatype.Datatype.tkey_voxel_box` or
   :meth:`~dvidpy.datatype.Datatype.roi_filter_value` hook (uint8blk, labelmap,
   annotation) arrive partial: the receiver records those (instance, version) pairs as
   *missing* (``GET /api/transfer/missing/{uuid}``) and the next push without ROI sends
   them whole (where a filtered push had sent a tombstone for a key at a version, the
   value replaces it, and vice versa). Other instances, and the roi instance itself,
   always arrive whole.
5. **Finish.** ``POST /api/transfer/receive/{tid}/finish`` adds all staged nodes (locked)
   and instances at once. Until then staged versions are invisible: not in
   ``/api/repos/info``, not resolvable, their keys unreadable.

ROI filtering (``roi``), with the ROI as it is at the requested UUID, at every version:

* **uint8blk, labelmap**: blocks whose voxel box touches none of the ROI's blocks are left
  out (a block touching it is sent whole); labelmap label indices, mappings, counters
  and properties are sent whole.
* **annotation**: block lists outside the ROI's blocks are left out, and the block, label
  and tag lists that are sent keep only the elements whose position lies in one of the
  ROI's blocks (an element keeps its relationships, even to elements left out). A list
  with nothing left becomes a tombstone at that version (so the receiver doesn't show
  the parent's filtered list there); in a flattened push it is simply not sent.
* every other datatype, and the roi instance itself: sent whole.

Another ROI push before the unfiltered one re-sends the still-missing versions filtered
by its ROI (annotation label and tag lists then hold that ROI's elements).

``POST /api/transfer/count`` (a keys-only pass) is exact for versioned streams and an
upper bound for flattened ROI-filtered ones.

Resuming: running the same push/pull again re-plans; unfinished groups restart at their
last recorded TKey (replaying a chunk is harmless: records are exact puts). ``DELETE
/api/transfer/receive/{tid}`` aborts and deletes staged data; a receiver over
``[transfer] maxBytes`` (its TOML) or ``maxRequestBytes`` aborts by itself (413).

Modules: :mod:`.protocol` (frames), :mod:`.sender` (manifest, record selection),
:mod:`.receiver` (staging, apply, publish), :mod:`.client` (HTTP sources/sinks and the
driver :func:`run_transfer`), :mod:`.routes` (HTTP routes and server-side jobs),
:mod:`.dvid_import` (public-API importer).
"""

from dvidpy.transfer.client import (
    HttpSink,
    HttpSource,
    LocalSink,
    TransferError,
    run_transfer,
    speaks_transfer,
)
from dvidpy.transfer.receiver import Receiver
from dvidpy.transfer.sender import LocalSource, build_manifest

__all__ = [
    "HttpSink",
    "HttpSource",
    "LocalSink",
    "LocalSource",
    "Receiver",
    "TransferError",
    "build_manifest",
    "run_transfer",
    "speaks_transfer",
]
