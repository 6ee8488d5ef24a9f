"""annotation: point annotations (synapses, bookmarks) that follow a labelmap (dvid-api.md §10).

Element JSON (fields always emitted in this order)::

    {"Pos": [x,y,z], "Kind": "PreSyn", "Tags": ["a"], "Prop": {"conf": "0.9"},
     "Rels": [{"Rel": "PreSynTo", "To": [x2,y2,z2]}]}

``Kind`` ∈ PostSyn, PreSyn, Gap, Note, Unknown (missing = Unknown); ``Rel`` ∈ PostSynTo,
PreSynTo, ConvergentTo, GroupedWith, UnknownRelationship; ``Prop`` values must be strings.
``Tags``/``Prop``/``Rels`` are echoed as posted (omitted or null → ``null``, empty → empty);
``Prop`` keys come back sorted. Relationships are not made reciprocal; they are only
maintained on delete and move. Anything malformed in a POST → 400 and nothing is written.

Endpoints under ``/api/node/{uuid}/{data}/``:

``POST elements[?kafkalog=off]``
    Array of elements; each is inserted or replaces the element at the same ``Pos`` (the
    last one wins within a request). Block, label and tag lists change in one batch.
``GET elements/{nx_ny_nz}/{x_y_z}``
    Elements (with Rels) whose Pos lies in the box; the literal ``null`` when none. Only
    the stored blocks inside the box are read, so any box (up to the int32 range; beyond
    it 400) costs what it holds.
``DELETE element/{x_y_z}``
    Deletes it and removes relationships pointing to it from elements in its own block
    and in its partners' blocks. 400 "Did not find element" when missing.
``POST move/{from_x_y_z}/{to_x_y_z}``
    Moves it (re-labelled by its new position); relationships pointing to ``from`` in the
    blocks of ``from``, ``to`` and its partners are retargeted. 400 when nothing is at
    ``from`` or another element is already at ``to``; ``from == to`` is a no-op.
``GET label/{label}[?relationships=true|verbose]`` / ``GET tag/{tag}[?relationships=...]``
    Elements of a body (requires a labelmap sync) or tag. Default: without ``Rels``;
    ``true``: with Rels (read from the blocks); ``verbose``: each rel also carries the
    partner's ``Kind`` and, when non-empty, ``Tags`` and ``Prop``. ``[]`` when none; label
    0 → 400. Order is unspecified.
``GET labels[?relationships=...]``
    Body ``[l1, l2, ...]`` → ``[[elements of l1], [elements of l2], ...]`` in request order.
``POST labels``
    Low-level ingest of label lists: ``{"<label>": "<JSON array string of elements>"}``.
``GET roi/{roiname}[,{uuid}]``
    Elements in the blocks of the ROI (read at the request's version unless ``uuid``);
    the ROI block size must equal the annotation block size (400). ``null`` when none.
``GET blocks/{nx_ny_nz}/{x_y_z}`` / ``GET all-elements``
    Streamed ``{"x,y,z": [elements...], ...}`` for every non-empty block intersecting the box
    (elements are not clipped) / for all blocks.
``POST blocks``
    Same shape; replaces those block lists wholesale (every element must lie in its
    block, else 400). Label/tag lists and labelsz are NOT updated: ``POST reload`` after.
``POST reload``
    Rebuilds the label and tag lists of this version from the blocks (synchronously).
    Synced labelsz instances are not notified; ``POST reload`` them too.
``GET scan`` → ``{"num kv pairs": N, "num empty blocks": M}``.
``POST sync`` ``{"sync": "segmentation"}``
    Follow one labelmap (any other type → 400; a second labelmap → 400). The block size
    becomes the labelmap's (400 if elements already exist in other-sized blocks). Not
    retroactive: ``POST reload`` after syncing an instance that already has elements.
``GET mutations``
    This version's records: element-post (``DataRef`` = blobstore reference of the posted
    JSON unless ``kafkalog=off``), element-delete, element-move, blocks-post, labels-post,
    reload, and ``sync-<event>`` records (same MutationID as the labelmap edit).

Following the labelmap (§10.3), synchronously and only at the edited version: merges
move the merged bodies' lists onto the target; cleaves and body splits re-look up the
cleaved/split body's elements; block writes re-label elements in the written blocks;
supervoxel splits change nothing. Every label-list change is published to synced
``labelsz`` instances as a ``label-elements`` event (see :mod:`.sync`).

Storage: see :mod:`.store` (block, label and tag lists, versioned) and :mod:`.elements`
(packed lists with per-element JSON).
"""

from datatypes.annotation.datatype import Annotation

Annotation.help_text = __doc__ or ""

__all__ = ["Annotation"]
