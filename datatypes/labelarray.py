"""labelarray, labelblk and labelvol: DVID's older segmentation types, served by the
labelmap machinery (:mod:`datatypes.labelmap`), not by copies of it (dvid-api.md §14).

``labelarray``
    64-bit label blocks with label indices, a pyramid (``MaxDownresLevel``), sparse
    volumes, merges and splits, but no supervoxel → body mapping: a labelmap without
    the supervoxel endpoints (``mapping``, ``mappings``, ``cleave``, ``split-supervoxel``,
    ``supervoxel-splits``, ``supervoxels``, ``supervoxel-sizes``, ``ingest-supervoxels``,
    ``map-stats``, ``renumber``). Neuroglancer reads it as it reads labelmap.
``labelblk``
    64-bit label blocks at one scale (``MaxDownresLevel`` is always 0): voxel, block and
    point reads (``raw``, ``isotropic``, ``blocks``, ``specificblocks``, ``label``,
    ``labels``, ``maxlabel``, ...). Sparse volumes and edits live in a ``labelvol`` synced
    to it; neuroglancer reads it as compressed segmentation without scales.
``labelvol``
    Sparse volumes and edits of the labelblk it is synced to (``POST sync {"sync":
    "blk"}`` or the ``sync`` creation setting): ``sparsevol``, ``sparsevol-by-point``,
    ``sparsevol-coarse``, ``sparsevols-coarse``, ``sparsevol-size``, ``merge``, ``split``,
    ``maxlabel``, ``nextlabel``, ``size(s)``, ``listlabels``, ``mutations(-range)``. Each
    request is answered by the labelblk's handler at the same version (same parameters,
    answers and errors as labelmap's; edits are logged and published by the labelblk);
    400 when no labelblk is synced.

Voxel, index and mutation-log layouts are labelmap's (:mod:`datatypes.labelmap.layout`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from datatypes.labelmap.datatype import Labelmap
from dvidpy.datatype import Call, Datatype, register_datatype
from dvidpy.errors import BadRequest
from dvidpy.http.spec import JSON
from dvidpy.versioned import VersionedCtx

SUPERVOXEL_ENDPOINTS = frozenset({
    "mapping", "mappings", "cleave", "split-supervoxel", "supervoxel-splits", "supervoxels",
    "supervoxel-sizes", "ingest-supervoxels", "map-stats", "renumber"})
#: labelmap endpoints a labelvol answers for its labelblk
LABELVOL_ENDPOINTS = frozenset({
    "sparsevol", "sparsevol-by-point", "sparsevol-coarse", "sparsevols-coarse",
    "sparsevol-size", "merge", "split", "maxlabel", "nextlabel", "size", "sizes",
    "listlabels", "lastmod", "existing-labels", "mutations", "mutations-range"})


def _values(ext: dict[str, Any], label: str) -> dict[str, Any]:
    ext["Values"] = [{"DataType": "uint64", "Label": label}]
    return ext


@register_datatype
class LabelArray(Labelmap):
    """labelarray: labelmap without the supervoxel mapping (see the module docstring)."""

    type_name = "labelarray"
    type_url = "github.com/janelia-flyem/dvid/datatype/labelarray"
    type_version = "0.1"
    help_text = __doc__ or ""
    omit_endpoints = SUPERVOXEL_ENDPOINTS

    def extended(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        return _values(super().extended(ctx), self.type_name)


@register_datatype
class LabelBlk(Labelmap):
    """labelblk: label blocks at one scale; sparse volumes and edits through a labelvol."""

    type_name = "labelblk"
    type_url = "github.com/janelia-flyem/dvid/datatype/labelblk"
    type_version = "0.1"
    help_text = __doc__ or ""
    omit_endpoints = SUPERVOXEL_ENDPOINTS | (LABELVOL_ENDPOINTS - {
        "maxlabel", "nextlabel", "mutations", "mutations-range"}) | {
            "index", "indices", "indices-compressed", "index-version", "history",
            "proximity"}

    @staticmethod
    def _one_scale(settings: Mapping[str, str]) -> None:
        if settings.get("maxdownreslevel", "0").strip() not in ("", "0"):
            raise BadRequest("labelblk instances have one scale (MaxDownresLevel 0)")

    @classmethod
    def parse_settings(cls, settings: Mapping[str, str]) -> dict[str, Any]:
        cls._one_scale(settings)
        return super().parse_settings({**settings, "maxdownreslevel": "0"})

    def update_settings(self, settings: Mapping[str, str]) -> None:
        self._one_scale(settings)
        super().update_settings(settings)

    def extended(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        return _values(super().extended(ctx), self.type_name)


@register_datatype
class LabelVol(Datatype):
    """labelvol: sparse volumes and edits of a synced labelblk."""

    type_name = "labelvol"
    type_url = "github.com/janelia-flyem/dvid/datatype/labelvol"
    type_version = "0.1"
    help_text = __doc__ or ""
    subscribes = {"labelblk": frozenset()}  # the labelblk's own machinery does the work
    one_sync_of = frozenset({"labelblk"})

    def source(self) -> Labelmap:
        """The synced labelblk; 400 when there is none."""
        for n in self.meta.syncs:
            inst = self.manager.find_instance(self.repo, n)
            if isinstance(inst, LabelBlk):
                return inst
        raise BadRequest(f"labelvol {self.meta.name!r} is not synced to a labelblk")

    def extended(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        try:
            src = self.source()
        except BadRequest:
            return {}
        return {"BlockSize": list(src.block_size), "Syncs": [src.meta.name]}

    def _delegate(self, call: Call) -> Any:
        """Answer ``call`` with the labelblk's handler for the same route, at the same
        node, user and app."""
        spec = Labelmap._routes.get((call.method, call.keyword)) or Labelmap._routes[
            ("GET", call.keyword)]
        if spec.body is not None and spec.body.media == JSON and call.body:
            call.json()  # a malformed body is reported first, synced or not
        src = self.source()
        ctx = self.manager.context(src, call.ctx.node, call.ctx.user, call.ctx.app)
        ctx.allow_locked = call.ctx.allow_locked
        return spec.handler(src, replace(call, ctx=ctx))


LabelVol._routes = {
    **LabelVol._routes,
    **{k: replace(spec, handler=LabelVol._delegate, summary=spec.summary + " (of the "
                  "synced labelblk)")
       for k, spec in Labelmap._routes.items() if k[1] in LABELVOL_ENDPOINTS},
}
