"""labelmap: versioned 64-bit segmentation with a supervoxel → body mapping (dvid-api.md §9).

Creation settings (strings): ``BlockSize`` ("64,64,64"; multiples of 16), ``VoxelSize``,
``VoxelUnits``, ``IndexedLabels`` ("true"), ``MaxDownresLevel`` ("0"). Blocks are always
stored gzip-wrapped. ``POST info`` changes VoxelSize/VoxelUnits/MaxDownresLevel/IndexedLabels.

Endpoints under ``/api/node/{uuid}/{data}/`` (``supervoxels=true`` means ids are raw
supervoxels instead of mapped bodies; ``scale`` must be 0..MaxDownresLevel, else 400):

Voxels and blocks
    ``GET raw|isotropic/0_1_2/{nx_ny_nz}/{x_y_z}[?scale&supervoxels&compression=]``
    compression none/lz4/gzip/google/googlegzip; uint64 LE ZYX (lz4 = one raw LZ4
    block; googlegzip adds ``Content-Encoding: gzip``; google* need
    sizes that are multiples of 8). Unwritten voxels are 0.
    The format segment may be ``octet-stream`` (DVID's default name). ``roi=NAME`` zeroes
    voxels outside that ROI (at scale s the ROI block size must be divisible by 2^s).
    2-D ``raw/0_1|0_2|1_2/{w_h}/{x_y_z}[/png]``: 16-bit RGBA PNG whose sample bytes are the
    little-endian label bytes (DVID's NRGBA64). ``GET pseudocolor/{2-D dims}/{w_h}/{x_y_z}
    [?roi&scale&supervoxels]``: RGBA PNG with a hashed color per label (0 transparent).
    ``POST raw/0_1_2/{size}/{offset}[?compression=lz4|gzip&roi=NAME]`` block-aligned
    supervoxel ids; updates indices, extents, max label and all lower scales; with
    ``roi=`` only voxels inside the ROI change. Bulk writes commit in batches of about
    ``[server] writeBatchBytes`` after the whole request is validated.
    ``GET blocks/{size}/{offset}[?scale&supervoxels&compression=]`` block stream (§8.5);
    payload: lz4 (default) / gzip / uncompressed uint64 arrays or ``blocks`` (gzip of the
    DVID label block). ``GET specificblocks?blocks=x,y,z,...`` same, default ``blocks``.
    ``POST blocks[?scale&downres=true&noindexing=true]`` gzip'd DVID label blocks.
    ``POST ingest-supervoxels[?scale]`` same body, stored as-is (no indexing, sync,
    extents, max label or downres). ``POST extents`` ``{"MinPoint","MaxPoint"}``.
Limits (checked before any work)
    A request reads or writes at most ``min(2^28, maxRequestBytes / 8)`` voxels (413).
    Boxes must lie in the int32 voxel space and block coordinates must fit label-index
    block keys (``|scale-0 block| <= 2^20 - 1``; at scale s, ``2^(20-s) - 1``): 400
    naming the limit. ``roi=NAME`` naming no roi instance is a 400 on every endpoint
    taking it.
Point and index queries
    ``GET label/{x_y_z}`` → ``{"Label": id}``; ``GET labels`` body ``[[x,y,z],...]``.
    ``GET size/{label}`` (404 unknown), ``GET sizes`` body ``[l,...]`` (0 unknown),
    ``GET supervoxels/{label}``, ``GET supervoxel-sizes/{label}``, ``GET lastmod/{label}``,
    ``GET sparsevol-size/{label}``, ``GET listlabels[?start&number&sizes=true]``,
    ``GET existing-labels`` (streamed JSON array of bodies with an index).
    Label 0 → 400 everywhere a label is named in the path.
Sparse volumes
    ``GET|HEAD sparsevol/{label}[?format=rles|srles|blocks&scale&supervoxels&minx..maxz]``
    (404 when nothing; HEAD 200/204); ``GET sparsevol-coarse/{label}`` (block coords).
    ``GET sparsevol-by-point/{x_y_z}`` same options, label at a scale-0 point (400 if 0).
    ``GET sparsevols-coarse/{start}/{end}[?minx..maxz]`` stream of ``u64 label, i32 S,
    S block spans`` per body with an index in [start, end].
Labels and mapping
    ``GET maxlabel`` (400 "No maximum label" when none), ``POST maxlabel/{N}``,
    ``GET nextlabel``, ``POST nextlabel/{count}`` → ``{"start","end"}``,
    ``POST set-nextlabel/{label}[?ceiling=N]`` (admin; allocations past the ceiling fail),
    ``GET index-version/{label}`` (UUID of the version holding the index),
    ``GET index/{label}?mutid=M`` (the newest stored index written before mutation M),
    ``GET map-stats``, ``GET metadata`` (nd-data JSON), ``POST resolution`` ``[x,y,z]``,
    ``GET proximity/{target},{l2},...`` (per shared block, the smallest voxel distance;
    see :mod:`datatypes.labelmap.more`).
    ``GET mapping`` body ``[sv,...]`` → bodies (0 unknown/retired; ``nolookup=true``
    skips the index check); ``GET mappings[?format=binary]``; ``POST mappings``
    (protobuf MappingOps). ``GET|POST index/{label}``, ``GET|POST indices`` (protobuf).
    ``GET indices-compressed`` body ``[l,...]`` (<= 50,000): per label ``u64 size, u64
    label`` + stored lz4-framed LabelIndex (size 0 when missing; 0/0 = error mid-stream).
    ``GET supervoxel-splits`` → ``["uuid", [[mutid, old, remain, split], ...], ...]``
    from this version to the root (versions without splits omitted).
Edits (each gets a MutationID, a ``GET mutations`` record and a sync event)
    ``POST merge`` body ``[target, merged...]`` → ``{"MutationID"}``; mapping and
    indices only. Target must exist, merged labels must exist, target may not be merged.
    ``POST cleave/{label}`` body ``[sv,...]`` → ``{"CleavedLabel","MutationID"}``; all
    supervoxels must belong to the label and at least one must remain.
    ``POST split-supervoxel/{sv}[?split=&remain=&downres=false]`` body legacy RLE (all
    voxels must lie in the supervoxel: spans leaving its bounding box, or more voxels
    than it has, are refused before any per-span work) → ``{"SplitSupervoxel","RemainSupervoxel",
    "MutationID"}``; the old supervoxel id is retired (maps to 0).
    ``POST split/{label}`` body legacy RLE (strict subset of the body) →
    ``{"label": new body, "MutationID"}``; supervoxels entirely inside move to the new
    body, partially covered ones are split into new split/remain supervoxels.
    ``POST renumber`` body ``[new1, old1, ...]``: each old body becomes the (unused)
    new id; one mutation per pair; other supervoxel mappings are untouched.
    ``GET mutations`` → this version's completed-mutation records (DVID's actions:
    ``merge-complete``, ``cleave-complete``, ``split-complete``,
    ``split-supervoxel-complete``, ``renumber-complete``, ``setnextlabel``);
    ``GET mutations-range/{beg}/{end}`` → one array over the versions beg..end;
    ``GET history/{label}/{from}/{to}`` → concatenated JSON objects (no brackets) of the
    merges/cleaves/splits/supervoxel splits that built ``label`` (as of ``to``).

Sync events (``SyncEvent.kind`` → ``payload``; arrays are supervoxel ids, coords x,y,z):

* ``block-ingested`` / ``block-mutated``: ``{"scale": 0, "blocks": [{"coord", "prev"
  (None for ingested), "data"}]}`` (``prev``/``data`` are (bz, by, bx) uint64 arrays).
* ``merge``: ``{"target", "merged": [...], "supervoxels": {label: [svs]},
  "block_keys": [...]}`` (label-index block keys). ``POST renumber`` publishes one
  ``merge`` per pair (``merged`` = [old], target = the new id, which had no voxels) with
  the extra field ``"renumber": True``.
* ``cleave``: ``{"orig", "cleaved", "supervoxels": [...], "block_keys": [...]}``.
* ``split-supervoxel``: ``{"supervoxel", "body", "split", "remain", "blocks": [coords]}``.
* ``split``: ``{"target", "new", "whole": [svs moved], "svsplits": {sv: (split,
  remain)}, "blocks": [rewritten coords]}``.
"""

from __future__ import annotations

from datatypes.labelmap import layout as L
from datatypes.labelmap.more import MoreMixin
from dvidpy.datatype import register_datatype


@register_datatype
class Labelmap(MoreMixin):
    """The labelmap datatype."""

    type_name = "labelmap"
    type_url = "github.com/janelia-flyem/dvid/datatype/labelmap"
    type_version = "0.1"
    default_compression = "gzip"
    publishes = frozenset({"block-ingested", "block-mutated", "merge", "cleave",
                           "split", "split-supervoxel"})
    tkey_classes = {
        L.BLOCK_CLASS: "label block: scale + ZYX block coord -> gzip'd DVID label block",
        L.INDEX_CLASS: "label index: body (u64 BE) -> LabelIndex protobuf (lz4)",
        L.MAPPING_CLASS: "mapping: supervoxel (u64 BE) -> body (u64 LE, 0 = retired)",
        L.MAXLABEL_CLASS: "per-version max label",
        L.COUNTER_CLASS: "repo-wide counters at version 0 (maxrepolabel, nextlabel)",
        L.MUTLOG_CLASS: "mutation log: version + mutation id -> JSON record",
    }


__all__ = ["Labelmap"]
