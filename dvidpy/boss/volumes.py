"""A channel's voxels: resolutions, time samples and boxes of the Boss mapped onto
instances (:class:`Volume`).

**Resolutions.** Resolution 0 is the channel's instance. Resolution ``k`` of an image
channel is its pyramid instance ``NAME_k`` (``POST /v1/downsample`` builds it with the
imageblk pyramid: x and y halved per level for the Boss's default ``anisotropic``
hierarchy, x, y and z for ``isotropic``); of an annotation channel the labelmap's scale
``k`` (kept up to date on every write, 2x2x2 mode; in an anisotropic experiment each of its
z slices is repeated ``2**k`` times so the box keeps the Boss's full z). A level not
built yet reads as zeros, as a missing cuboid does in the Boss. ``iso=true`` reads the
isotropic view of an anisotropic experiment: from the first level whose x voxel size
reaches the z voxel size on, z is halved too, which for images is the Boss's rule (its
isotropic levels keep every other z slice) taken from the anisotropic level. Writes go
to resolution 0 (the channel's ``base_resolution`` is kept and shown).

**Extents.** Cutout ranges must lie in the coordinate frame, scaled to the resolution
(``floor(start / f)`` to ``ceil(stop / f)`` per axis, ``f`` that axis's factor).

**Time.** ``t0:t1`` must lie in ``0..num_time_samples``; without it a request reads and
writes the channel's ``default_time_sample``. Image channels keep time samples in their
instance (imageblk ``TimeSamples``: sample ``t`` > 0 is a TKey component); annotation
channels keep sample ``t`` > 0 in a labelmap instance ``NAME.tT`` made on its first write.

**Size.** A request over the Boss's ``CUTOUT_MAX_SIZE`` (520 MiB of voxels, uint64 counted
at a quarter as the Boss does) is a 413 before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dvidpy.boss.errors import (
    DATATYPE_NOT_SUPPORTED,
    INVALID_CUTOUT_ARGS,
    REQUEST_TOO_LARGE,
    BossError,
)

if TYPE_CHECKING:
    from dvidpy.boss.access import Target
    from dvidpy.boss.model import BossModel
    from dvidpy.datatype import Datatype
    from dvidpy.versioned import VersionedCtx

CUTOUT_MAX_SIZE = 520 * 1048576
#: the cuboid size the Boss reports for every resolution (clients chunk by it)
CUBOID_SIZE = [512, 512, 16]
DTYPES = {"uint8": np.dtype("u1"), "uint16": np.dtype("<u2"), "uint32": np.dtype("<u4"),
          "uint64": np.dtype("<u8")}


def check_size(nvoxels: int, dtype: np.dtype) -> None:
    """413 when ``nvoxels`` of ``dtype`` are over the Boss's cutout limit."""
    nbytes = nvoxels * dtype.itemsize
    if dtype.itemsize == 8:
        nbytes //= 4
    if nbytes > CUTOUT_MAX_SIZE:
        raise BossError(f"Cutout request is over {CUTOUT_MAX_SIZE >> 20} MiB when "
                        "uncompressed. Reduce cutout dimensions.", REQUEST_TOO_LARGE, 413)


@dataclass
class Box:
    """A box at one resolution: ``offset``/``size`` (x, y, z) and time ``t0:t1``."""

    offset: tuple[int, int, int]
    size: tuple[int, int, int]
    t0: int
    t1: int
    #: whether the request named a time range (answers are then 4-D)
    timed: bool

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(t, z, y, x)``."""
        return (self.t1 - self.t0, self.size[2], self.size[1], self.size[0])


class Volume:
    """The voxels of one channel at one version (see the module docstring)."""

    def __init__(self, model: BossModel, t: Target, user: str = "", app: str = "boss"):
        assert t.exp is not None and t.chan is not None and t.inst is not None
        self.model = model
        self.t = t
        self.exp = t.exp
        self.chan = t.chan
        self.inst = t.inst
        self.frame = model.frame(t.exp["coord_frame"])
        self.user = user
        self.app = app
        self.annotation = t.chan["type"] == "annotation"
        self.dtype = DTYPES[t.chan["datatype"]]
        self.levels = int(t.exp["num_hierarchy_levels"])
        self.aniso = t.exp["hierarchy_method"] == "anisotropic"

    # ----- geometry ---------------------------------------------------------------------

    def iso_level(self) -> int:
        """The first level at which an anisotropic pyramid's x voxel size reaches z's."""
        vx, vz = self.frame["x_voxel_size"], self.frame["z_voxel_size"]
        if vx >= vz:
            return 0
        return math.ceil(math.log2(vz / vx))

    def factors(self, res: int, iso: bool = False) -> tuple[int, int, int]:
        """Per-axis (x, y, z) downsampling factor of resolution ``res``."""
        f = 2 ** res
        if not self.aniso:
            return (f, f, f)
        fz = 2 ** max(0, res - self.iso_level()) if iso else 1
        return (f, f, fz)

    def voxel_size(self, res: int, iso: bool = False) -> list[float]:
        """Voxel size at ``res``."""
        return [self.frame[f"{a}_voxel_size"] * f
                for a, f in zip("xyz", self.factors(res, iso), strict=True)]

    def extent(self, res: int, iso: bool = False) -> list[tuple[int, int]]:
        """``[(start, stop)]`` per axis of the frame at ``res``."""
        out = []
        for a, f in zip("xyz", self.factors(res, iso), strict=True):
            out.append((self.frame[f"{a}_start"] // f, -(-self.frame[f"{a}_stop"] // f)))
        return out

    def check_res(self, res: int) -> None:
        """400 unless ``res`` is one of the experiment's hierarchy levels."""
        if not 0 <= res < self.levels:
            raise BossError(f"Invalid resolution {res}. The resolution has to be within 0 "
                            f"and {self.levels - 1}", INVALID_CUTOUT_ARGS)

    def box(self, res: int, xr: tuple[int, int], yr: tuple[int, int], zr: tuple[int, int],
            tr: tuple[int, int] | None, iso: bool = False) -> Box:
        """The request's box, checked against the frame at ``res`` and the experiment's
        time samples (400 naming what is outside), and the size limit (413)."""
        self.check_res(res)
        for a, (lo, hi), (flo, fhi) in zip("xyz", (xr, yr, zr), self.extent(res, iso),
                                          strict=True):
            if lo < flo or hi > fhi:
                raise BossError(f"Incorrect cutout arguments: {a} range {lo}:{hi} is outside "
                                f"the coordinate frame {flo}:{fhi} at resolution {res}",
                                INVALID_CUTOUT_ARGS)
        nt = int(self.exp["num_time_samples"])
        if tr is None:
            t0 = int(self.chan["default_time_sample"])
            t1 = t0 + 1
        else:
            t0, t1 = tr
            if t1 > nt:
                raise BossError(f"Incorrect time range {t0}:{t1}: the experiment has "
                                f"{nt} time samples", INVALID_CUTOUT_ARGS)
        b = Box((xr[0], yr[0], zr[0]), (xr[1] - xr[0], yr[1] - yr[0], zr[1] - zr[0]),
                t0, t1, tr is not None)
        check_size(int(np.prod(b.shape)), self.dtype)
        return b

    # ----- instances --------------------------------------------------------------------

    def _ctx(self, inst: Datatype) -> VersionedCtx:
        assert self.t.node is not None
        return self.model.mgr.context(inst, self.t.node, self.user, self.app)

    def time_instance(self, t: int, create: bool = False) -> Datatype | None:
        """The labelmap holding time sample ``t`` of an annotation channel (None when it was
        never written and ``create`` is false)."""
        if t == 0:
            return self.inst
        name = f"{self.inst.meta.name}.t{t}"
        repo = self.inst.repo
        inst = self.model.mgr.find_instance(repo, name)
        if inst is None and create:
            assert self.t.node is not None
            cfg = self.inst.meta.config
            inst = self.model.mgr.new_instance(repo, self.t.node, {
                "typename": "labelmap", "dataname": name,
                "blocksize": ",".join(map(str, cfg["block_size"])),
                "voxelsize": ",".join(repr(float(v)) for v in cfg["voxel_size"]),
                "voxelunits": ",".join(cfg["voxel_units"]),
                "maxdownreslevel": str(cfg["max_scale"])})
        return inst

    def level_instance(self, res: int) -> Datatype | None:
        """The imageblk instance of resolution ``res`` of an image channel, or None."""
        if res == 0:
            return self.inst
        inst = self.model.mgr.find_instance(self.inst.repo, f"{self.inst.meta.name}_{res}")
        if inst is None or inst.type_name != self.inst.type_name:
            return None
        return inst

    # ----- reading ----------------------------------------------------------------------

    def read(self, res: int, b: Box, iso: bool = False) -> np.ndarray:
        """``(t, z, y, x)`` voxels of ``b`` at ``res`` (zeros where nothing is stored)."""
        out = np.zeros(b.shape, dtype=self.dtype)
        fz_iso = 1
        if iso and self.aniso:
            fz_iso = self.factors(res, True)[2]
        for i, t in enumerate(range(b.t0, b.t1)):
            self._read_into(out[i], res, b.offset, b.size, t, fz_iso)
        return out

    def _read_into(self, dst: np.ndarray, res: int, offset: tuple[int, int, int],
                   size: tuple[int, int, int], t: int, fz_iso: int) -> None:
        """Fill ``dst`` (``(z, y, x)``) with one time sample; ``fz_iso`` > 1 takes every
        ``fz_iso``-th z slice of the anisotropic level (the isotropic view)."""
        if fz_iso > 1:
            z0 = offset[2] * fz_iso
            zs = (size[2] - 1) * fz_iso + 1
            tmp = np.zeros((zs, size[1], size[0]), dtype=self.dtype)
            self._read_into(tmp, res, (offset[0], offset[1], z0), (size[0], size[1], zs),
                            t, 1)
            dst[...] = tmp[::fz_iso]
            return
        if self.annotation:
            inst = self.time_instance(t)
            if inst is None:
                return
            ctx = self._ctx(inst)
            if res and self.aniso:  # labelmap scales halve z too: repeat its slices
                f = 2 ** res
                z0, z1 = offset[2] // f, -(-(offset[2] + size[2]) // f)
                sub = inst.read_subvolume(ctx, res, (offset[0], offset[1], z0),
                                          (size[0], size[1], z1 - z0), True)
                idx = np.arange(offset[2], offset[2] + size[2]) // f - z0
                dst[...] = sub[idx]
                return
            dst[...] = inst.read_subvolume(ctx, res, offset, size, True)
            return
        inst = self.level_instance(res)
        if inst is None:
            return
        if t >= inst.time_samples:
            raise BossError(f"time sample {t} is outside the {inst.time_samples} samples of "
                            f"{inst.meta.name!r}", INVALID_CUTOUT_ARGS)
        inst.read_box(self._ctx(inst), offset, size, t, out=dst)

    # ----- writing ----------------------------------------------------------------------

    def write(self, res: int, b: Box, data: np.ndarray) -> None:
        """Write ``(t, z, y, x)`` voxels (all checks done before the first write): each
        time sample is its own write, atomic when it fits one batch."""
        if res != 0:
            raise BossError(f"writes go to resolution 0 on this server, not {res} (lower "
                            "resolutions are made by /v1/downsample)", INVALID_CUTOUT_ARGS)
        for i, t in enumerate(range(b.t0, b.t1)):
            vol = data[i]
            if self.annotation:
                inst = self.time_instance(t, create=True)
                assert inst is not None
                inst.write_subvolume(self._ctx(inst), b.offset, vol)
            else:
                self.inst.write_box(self._ctx(self.inst), b.offset, vol, t=t)

    def check_writable(self) -> None:
        """400 when the version is locked (committed), as the metadata store has it now
        (another worker may just have committed it)."""
        if self.t.repo is not None and self.t.node is not None:
            self.t.node = self.model.mgr.current(self.t.repo, self.t.node)
        self.t.writable()

    # ----- annotation queries -----------------------------------------------------------

    def require_annotation(self, what: str) -> None:
        """400 unless this is an annotation channel."""
        if not self.annotation:
            raise BossError(f"The channel in request has type {self.chan['type']}. Can only "
                            f"{what} annotation channels", DATATYPE_NOT_SUPPORTED)

    def labelmap_ctx(self) -> tuple[Any, VersionedCtx]:
        """The annotation channel's labelmap (time sample 0) and its context."""
        return self.inst, self._ctx(self.inst)
