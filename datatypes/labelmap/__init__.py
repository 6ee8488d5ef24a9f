"""The ``labelmap`` datatype: 64-bit segmentation volumes and their wire codecs.

Modules: codecs (:mod:`.block_codec`, :mod:`.rle`, :mod:`.ngseg`, :mod:`.downres`), storage
layout (:mod:`.layout`), the mapping cache (:mod:`.mapping`), instance state
(:mod:`.core`), the parameter declarations shared by endpoints (:mod:`.params`), endpoints
(:mod:`.reads`, :mod:`.writes`, :mod:`.extras`) and the registered class
(:mod:`.datatype`, whose docstring is the user-facing API help). This package ``__init__``
imports nothing so the codecs can be used without the server.

Storage design (all state lives in the versioned store, so branching is copy-on-write)
---------------------------------------------------------------------------------------

* **Blocks** (class 186, TKey ``scale | z,y,x`` as offset u32 BE): supervoxel ids in DVID's
  compressed label block format (§9.16.1), stored **gzip-wrapped** inside DVID's value
  frame (1 header byte, optional CRC). Why gzip rather than lz4: ``compression=blocks``
  (neuclease, libdvid, NeuTu) must send exactly a gzip stream of that serialization, so
  the stored payload is passed through with no transcoding; ``POST blocks`` payloads are
  stored as posted (after full validation). Mapped reads rewrite only the block's label
  list (voxels index into it), and the identity check needs only the first ``16 + 8N``
  decompressed bytes, so unmerged blocks also pass through.
* **Mapping** (class 189): one versioned key per non-identity supervoxel, value = body
  (0 = retired supervoxel). Reads at any version resolve like any key, nothing is
  replayed at startup; :class:`~datatypes.labelmap.mapping.MappingCache` memoizes
  lookups per version and is updated by edits after their batch commits.
* **Label index** (class 187, body u64 BE → lz4-framed ``LabelIndex`` protobuf): per
  body, scale-0 block key (§9.16.9) → {supervoxel: voxel count}. Block writes diff the
  old and new block label counts (np.unique per block) and update only the touched
  (block, supervoxel) entries; merges/cleaves move entries between indices (cost
  O(index size + #supervoxels), never voxels).
* **Max label** per version (class 237, versioned) and repo-wide ``maxrepolabel`` /
  ``nextlabel`` counters (class 238, written at the never-visible version 0 in the same
  engine batch as the edit that allocates).
* **Mutation log** (class 242, ``version | mutation id`` → JSON record) written in the
  edit's batch; ``GET mutations`` scans this version's prefix.
* **Extents** are the per-version property ``extents``.

Writes and edits of one instance are serialized by ``LabelmapCore.lock``; each builds
one versioned batch after validating everything, so a rejected request writes nothing.
Bulk block writes (``POST raw``/``blocks``/``ingest-supervoxels``) are validated whole
too, then commit in batches of about ``[server] writeBatchBytes`` (see
:mod:`.writes`).
"""
