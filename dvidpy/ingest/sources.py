"""Sources of an ingest, each read with the library made for it.

:func:`open_source` picks the reader from the path:

=====================================  ======================================================
a directory of 2-D slices              one file per z, natural sort (``z2`` before ``z10``),
(``.tif``/``.tiff``, ``.png``,         optional ``glob``; TIFF through ``tifffile`` (an
``.jpg``/``.jpeg``)                    uncompressed slice is memory-mapped: a chunk reads only
                                       its window), PNG and JPEG through Pillow
a ``.tif``/``.tiff`` file              a multipage or 3-D TIFF (``tifffile``); a single page
                                       is a stack of one slice
a ``.h5``/``.hdf5``/``.hdf`` file      an HDF5 dataset (``h5py``; ``dataset=`` or
                                       ``FILE.h5:/path``; the only 3-D dataset by default)
a zarr (v2 or v3), N5 or neuroglancer  ``tensorstore``; zarr arrays are z, y, x unless their
precomputed directory                  dimension names say otherwise, N5 arrays x, y, z,
                                       precomputed volumes x, y, z, channel (one channel)
=====================================  ======================================================

Arrays are handed out as ``(z, y, x)`` numpy arrays of the source's dtype. Everything that
can be checked without reading the voxels is checked when the source is opened, before
anything is uploaded: files that do not open, are truncated (TIFF strips or tiles past
the end of the file, a PNG without its ``IEND`` chunk, a JPEG without its end marker),
slices of different sizes or dtypes, colour images, dimensions other than 2-D slices or
3-D volumes. A file that breaks later (corrupt compressed data) raises
:class:`SourceError` naming it when its chunk is read.

``tifffile``, ``h5py`` and ``tensorstore`` come with the ``ingest`` extra; PNG and JPEG
slices need only the base install.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

SLICE_EXTS = {".tif": "tiff", ".tiff": "tiff", ".png": "png", ".jpg": "jpeg",
              ".jpeg": "jpeg"}
HDF5_EXTS = (".h5", ".hdf5", ".hdf", ".he5")
#: decoded slices (PNG, JPEG, compressed TIFF) kept for the other chunks of their slab
SLICE_CACHE_BYTES = 512 << 20
Box = Sequence[int]  # x0, y0, z0, x1, y1, z1 (exclusive end)


class SourceError(Exception):
    """A source that cannot be read as asked; the message names the file."""


class MissingReader(SourceError):
    """The library for this kind of source is not installed (message: how to install)."""


def install_hint(module: str, what: str) -> str:
    """How to get the ``ingest`` extra, phrased like the storage engines' hints."""
    from storage.registry import install_command

    return (f"reading {what} needs {module}, which is in the ingest extra: "
            f"{install_command('dvidpy[ingest]')}")


def _need(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingReader(install_hint(module, what)) from None


def natural_key(name: str) -> list[Any]:
    """Sort key putting ``z2`` before ``z10`` (digit runs compare as numbers)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _stat_fp(paths: Sequence[str]) -> str:
    h = hashlib.sha1()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()[:20]


class Source:
    """A 3-D volume read in boxes (subclasses below; made by :func:`open_source`)."""

    kind = ""
    shape: tuple[int, int, int]  # (nz, ny, nx)
    dtype: np.dtype
    description = ""
    #: voxel size (x, y, z) in nanometers where the file says (None where it does not)
    voxel_size: tuple[float | None, float | None, float | None] = (None, None, None)

    def read(self, box: Box) -> np.ndarray:
        """The ``(z, y, x)`` voxels of ``box`` (source coordinates, inside the source);
        :class:`SourceError` naming the file when they cannot be read."""
        raise NotImplementedError

    def fingerprint(self, z0: int, z1: int) -> str:
        """Cheap identity (file sizes and modification times) of what slices z0..z1-1
        are read from: it changes when those files may have changed."""
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """JSON-able description that :func:`reopen` turns back into this source."""
        raise NotImplementedError

    def identity(self) -> str:
        """What makes it the same source for resuming: paths, shape, dtype (not content)."""
        s = json.dumps({"spec": self.spec(), "shape": self.shape, "dtype": str(self.dtype)},
                       sort_keys=True)
        return hashlib.sha1(s.encode()).hexdigest()[:32]

    def close(self) -> None:
        """Release open files."""


# ----- 2-D slices -----------------------------------------------------------------------


def _tail(path: str, n: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - n))
        return f.read()


def _pil_dtype(mode: str, path: str) -> np.dtype:
    modes = {"L": np.uint8, "P": None, "1": np.bool_, "I;16": np.uint16, "I;16B": np.uint16,
             "I;16L": np.uint16, "I": np.int32, "F": np.float32}
    dt = modes.get(mode)
    if dt is None:
        raise SourceError(f"{path}: a {mode} colour image; ingest reads single-channel "
                          "(grayscale or label) slices")
    return np.dtype(dt)


def _check_slice(path: str, fmt: str) -> tuple[tuple[int, int], np.dtype, dict[str, Any]]:
    """``((ny, nx), dtype, how to read)`` of one slice file, checked as far as the headers
    allow; :class:`SourceError` naming it otherwise."""
    try:
        if fmt == "tiff":
            tifffile = _need("tifffile", "TIFF slices")
            with tifffile.TiffFile(path) as tf:
                if len(tf.pages) != 1:
                    raise SourceError(f"{path}: {len(tf.pages)} pages; a slice is one 2-D "
                                      "page (give a multipage TIFF as a file, not a folder)")
                page = tf.pages[0]
                if page.ndim != 2:
                    raise SourceError(f"{path}: page shape {page.shape}; a slice is 2-D "
                                      "single-channel")
                _check_strips(tf, path)
                dt = np.dtype(page.dtype)
                how: dict[str, Any] = {}
                if page.is_contiguous and page.compression == 1 and page.dataoffsets:
                    how = {"offset": int(page.dataoffsets[0]),
                           "dtype": tf.byteorder + dt.str[1:]}
                return (int(page.shape[0]), int(page.shape[1])), dt.newbyteorder("="), how
        from PIL import Image

        with Image.open(path) as im:
            fmt_found = (im.format or "").lower()
            if fmt_found not in ("png", "jpeg", "mpo"):
                raise SourceError(f"{path}: not a {fmt.upper()} file ({im.format})")
            dt = _pil_dtype(im.mode, path)
            size = (im.size[1], im.size[0])
        tail = _tail(path, 1024)
        if fmt == "png" and tail[-8:-4] != b"IEND":
            raise SourceError(f"{path}: truncated PNG (no IEND chunk at its end)")
        if fmt == "jpeg" and b"\xff\xd9" not in tail[-16:]:
            raise SourceError(f"{path}: truncated JPEG (no end-of-image marker)")
        return size, dt, {}
    except SourceError:
        raise
    except Exception as e:
        raise SourceError(f"{path}: cannot read it as {fmt.upper()}: {e}") from None


def _check_strips(tf: Any, path: str) -> None:
    """TIFF strips or tiles that end past the file's end: a truncated file."""
    size = os.path.getsize(path)
    for page in tf.pages:
        offs, counts = page.dataoffsets, page.databytecounts
        if offs and max(o + c for o, c in zip(offs, counts, strict=False)) > size:
            raise SourceError(f"{path}: truncated TIFF (page data ends past the file's "
                              f"{size} bytes)")


class _SliceCache:
    """Decoded slices by path, least recently used dropped past a byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.items: OrderedDict[str, np.ndarray] = OrderedDict()
        self.nbytes = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self.lock:
            v = self.items.get(key)
            if v is not None:
                self.items.move_to_end(key)
            return v

    def put(self, key: str, v: np.ndarray) -> None:
        if v.nbytes > self.budget // 4:
            return
        with self.lock:
            if key in self.items:
                return
            self.items[key] = v
            self.nbytes += v.nbytes
            while self.nbytes > self.budget:
                _, old = self.items.popitem(last=False)
                self.nbytes -= old.nbytes


class SliceStack(Source):
    """A directory of 2-D slice files, one per z (see the module docstring)."""

    kind = "slices"

    def __init__(self, files: list[str], fmt: str, shape: tuple[int, int, int],
                 dtype: np.dtype, how: list[dict[str, Any]], directory: str,
                 pattern: str) -> None:
        self.files, self.fmt, self.shape, self.dtype, self.how = files, fmt, shape, dtype, how
        self.directory, self.pattern = directory, pattern
        self.description = (f"{directory}/{pattern} ({len(files)} {fmt.upper()} slices "
                            f"{shape[2]}x{shape[1]} {dtype})")
        self.cache = _SliceCache(SLICE_CACHE_BYTES)
        self.voxel_size = (None, None, None)

    @classmethod
    def open(cls, directory: str, pattern: str | None = None) -> SliceStack:
        d = Path(directory)
        if pattern:
            files = [p for p in d.glob(pattern) if p.is_file()]
        else:
            files = [p for p in d.iterdir() if p.suffix.lower() in SLICE_EXTS and p.is_file()]
        if not files:
            raise SourceError(f"{directory}: no slice files"
                              + (f" match {pattern!r}" if pattern else
                                 " (.tif, .tiff, .png, .jpg, .jpeg)"))
        files.sort(key=lambda p: natural_key(p.name))
        fmts = {SLICE_EXTS.get(p.suffix.lower(), "?") for p in files}
        if len(fmts) != 1 or "?" in fmts:
            raise SourceError(f"{directory}: slices of mixed or unknown formats "
                              f"({', '.join(sorted(p.suffix for p in files[:50]))}...); "
                              "use --glob to pick one kind")
        fmt = fmts.pop()
        names = [str(p) for p in files]
        with ThreadPoolExecutor(8) as ex:
            checked = list(ex.map(lambda p: _check_slice(p, fmt), names))
        (ny, nx), dt, _ = checked[0]
        for p, (size, d2, _) in zip(names, checked, strict=True):
            if size != (ny, nx):
                raise SourceError(f"{p}: slice is {size[1]}x{size[0]}, but {names[0]} is "
                                  f"{nx}x{ny}: every slice must have one size")
            if d2 != dt:
                raise SourceError(f"{p}: slice voxels are {d2}, but {names[0]} has {dt}: "
                                  "every slice must have one dtype")
        src = cls(names, fmt, (len(names), ny, nx), dt, [c[2] for c in checked], directory,
                  pattern or "*")
        src.voxel_size = _tiff_voxel_size(names[0]) if fmt == "tiff" else (None, None, None)
        return src

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": self.files, "fmt": self.fmt,
                "shape": list(self.shape), "dtype": str(self.dtype), "how": self.how,
                "directory": self.directory, "pattern": self.pattern}

    def _slice(self, z: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        path, how = self.files[z], self.how[z]
        try:
            if how:
                ny, nx = self.shape[1:]
                mm = np.memmap(path, dtype=np.dtype(how["dtype"]), mode="r",
                               offset=how["offset"], shape=(ny, nx))
                return mm[y0:y1, x0:x1]
            arr = self.cache.get(path)
            if arr is None:
                if self.fmt == "tiff":
                    arr = _need("tifffile", "TIFF slices").imread(path)
                else:
                    from PIL import Image

                    with Image.open(path) as im:
                        arr = np.asarray(im)
                if arr.shape != self.shape[1:]:
                    raise SourceError(f"{path}: decoded to shape {arr.shape}, expected "
                                      f"{self.shape[1:]} (the file changed?)")
                self.cache.put(path, arr)
            return arr[y0:y1, x0:x1]
        except SourceError:
            raise
        except Exception as e:
            raise SourceError(f"{path}: cannot read slice z={z}: {e}") from None

    def read(self, box: Box) -> np.ndarray:
        x0, y0, z0, x1, y1, z1 = box
        out = np.empty((z1 - z0, y1 - y0, x1 - x0), dtype=self.dtype)
        for z in range(z0, z1):
            out[z - z0] = self._slice(z, y0, y1, x0, x1)
        return out

    def fingerprint(self, z0: int, z1: int) -> str:
        return _stat_fp(self.files[z0:z1])


# ----- one file: 3-D TIFF, HDF5 ---------------------------------------------------------


_UNIT_NM = {"nm": 1.0, "nanometer": 1.0, "nanometers": 1.0, "um": 1e3, "µm": 1e3,
            "\\u00b5m": 1e3, "micron": 1e3, "microns": 1e3, "micrometer": 1e3, "mm": 1e6,
            "cm": 1e7, "m": 1e9}


def _tiff_voxel_size(path: str) -> tuple[float | None, float | None, float | None]:
    """Voxel size in nm from a TIFF's resolution tags and ImageJ metadata (None where it
    has none): XResolution/YResolution are pixels per ResolutionUnit (inch, cm) or, with
    ImageJ's ``unit``, pixels per that unit; ImageJ's ``spacing`` is z."""
    tifffile = _need("tifffile", "TIFF files")
    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            tags = page.tags
            ij = tf.imagej_metadata or {}
            unit = str(ij.get("unit", "")).strip().lower()
            per = _UNIT_NM.get(unit)
            runit = tags.get("ResolutionUnit")
            if per is None and runit is not None:
                per = {2: 2.54e7, 3: 1e7}.get(int(runit.value))
            out: list[float | None] = [None, None, None]
            if per is not None:
                for i, name in enumerate(("XResolution", "YResolution")):
                    t = tags.get(name)
                    if t is not None:
                        num, den = t.value
                        if num and den and num / den not in (1.0, 72.0):
                            out[i] = per * den / num
                if ij.get("spacing"):
                    out[2] = float(ij["spacing"]) * per
            return out[0], out[1], out[2]
    except Exception:
        return (None, None, None)


class TiffVolume(Source):
    """A multipage or 3-D TIFF file (``tifffile``)."""

    kind = "tiff"

    def __init__(self, path: str) -> None:
        tifffile = _need("tifffile", "TIFF files")
        self.path = path
        try:
            tf = tifffile.TiffFile(path)
        except Exception as e:
            raise SourceError(f"{path}: cannot read it as TIFF: {e}") from None
        try:
            series = tf.series[0]
            shape = tuple(int(s) for s in series.shape)
            axes = series.axes
            squeezed = [(n, a) for n, a in zip(shape, axes, strict=True) if n != 1 or a in "YX"]
            if [a for _, a in squeezed][-2:] != ["Y", "X"] or len(squeezed) > 3 or any(
                    a in "SC" for _, a in squeezed):
                raise SourceError(f"{path}: TIFF series of shape {shape} (axes {axes}); "
                                  "ingest reads a single-channel 3-D (or 2-D) volume")
            _check_strips(tf, path)
            dims = [n for n, _ in squeezed]
            if len(dims) == 2:
                dims = [1, *dims]
            self.shape = (dims[0], dims[1], dims[2])
            self.dtype = np.dtype(series.dtype).newbyteorder("=")
            self.pages = list(series.pages) if len(series.pages) == self.shape[0] else None
        finally:
            tf.close()
        self._mm: np.ndarray | None = None
        try:
            mm = tifffile.memmap(path, mode="r")
            if mm.size == self.shape[0] * self.shape[1] * self.shape[2]:
                self._mm = mm.reshape(self.shape)
        except Exception:  # compressed or not contiguous: read page by page
            self._mm = None
        self._tf: Any = None
        self._lock = threading.Lock()
        self.description = (f"{path} (TIFF {self.shape[2]}x{self.shape[1]}x{self.shape[0]} "
                            f"{self.dtype})")
        self.voxel_size = _tiff_voxel_size(path)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path}

    def read(self, box: Box) -> np.ndarray:
        x0, y0, z0, x1, y1, z1 = box
        if self._mm is not None:
            return np.ascontiguousarray(self._mm[z0:z1, y0:y1, x0:x1], dtype=self.dtype)
        tifffile = _need("tifffile", "TIFF files")
        out = np.empty((z1 - z0, y1 - y0, x1 - x0), dtype=self.dtype)
        try:
            with self._lock:
                if self._tf is None:
                    self._tf = tifffile.TiffFile(self.path)
                series = self._tf.series[0]
                if len(series.pages) == self.shape[0]:
                    for z in range(z0, z1):
                        page = series.pages[z]
                        out[z - z0] = page.asarray().reshape(self.shape[1:])[y0:y1, x0:x1]
                else:
                    out[:] = series.asarray().reshape(self.shape)[z0:z1, y0:y1, x0:x1]
        except Exception as e:
            raise SourceError(f"{self.path}: cannot read z {z0}..{z1 - 1}: {e}") from None
        return out

    def fingerprint(self, z0: int, z1: int) -> str:
        return _stat_fp([self.path])

    def close(self) -> None:
        if self._tf is not None:
            self._tf.close()
            self._tf = None


class Hdf5Volume(Source):
    """An HDF5 dataset (``h5py``), axes z, y, x."""

    kind = "hdf5"

    def __init__(self, path: str, dataset: str | None = None) -> None:
        h5py = _need("h5py", "HDF5 files")
        self.path = path
        try:
            self._f = h5py.File(path, "r")
        except Exception as e:
            raise SourceError(f"{path}: cannot open it as HDF5: {e}") from None
        if dataset is None:
            found: list[str] = []
            self._f.visititems(lambda n, o: found.append(n) if isinstance(
                o, h5py.Dataset) and o.ndim in (2, 3) else None)
            if len(found) != 1:
                self._f.close()
                raise SourceError(f"{path}: {len(found)} 2-D/3-D datasets "
                                  f"({', '.join(found[:10]) or 'none'}); name one with "
                                  "--dataset (or FILE.h5:/path)")
            dataset = found[0]
        self.dataset = dataset
        try:
            ds = self._f[dataset]
        except Exception as e:
            self._f.close()
            raise SourceError(f"{path}: no dataset {dataset!r}: {e}") from None
        if not isinstance(ds, h5py.Dataset) or ds.ndim not in (2, 3):
            self._f.close()
            raise SourceError(f"{path}:{dataset} is not a 2-D or 3-D dataset")
        shape = tuple(int(s) for s in ds.shape)
        self.shape = (1, *shape) if len(shape) == 2 else shape  # type: ignore[assignment]
        self.dtype = np.dtype(ds.dtype).newbyteorder("=")
        if self.dtype.kind not in "uifb":
            self._f.close()
            raise SourceError(f"{path}:{dataset} holds {ds.dtype}, not numbers")
        self._ds = ds
        self._lock = threading.Lock()
        self.description = (f"{path}:{dataset} (HDF5 {self.shape[2]}x{self.shape[1]}x"
                            f"{self.shape[0]} {self.dtype})")
        self.voxel_size = self._attrs_voxel_size(ds)

    @staticmethod
    def _attrs_voxel_size(ds: Any) -> tuple[float | None, float | None, float | None]:
        """``element_size_um`` (z, y, x in µm: FIJI/ilastik) or ``resolution`` /
        ``voxel_size`` (z, y, x in nm, the dataset's axis order)."""
        for name, per in (("element_size_um", 1e3), ("resolution", 1.0),
                          ("voxel_size", 1.0)):
            v = ds.attrs.get(name)
            if v is not None:
                try:
                    zyx = [float(x) * per for x in np.asarray(v).reshape(-1)]
                except (TypeError, ValueError):
                    continue
                if len(zyx) == 3:
                    return zyx[2], zyx[1], zyx[0]
        return (None, None, None)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "dataset": self.dataset}

    def read(self, box: Box) -> np.ndarray:
        x0, y0, z0, x1, y1, z1 = box
        try:
            with self._lock:  # h5py serializes anyway; one read at a time per file
                if self._ds.ndim == 2:
                    arr = self._ds[y0:y1, x0:x1][None]
                else:
                    arr = self._ds[z0:z1, y0:y1, x0:x1]
        except Exception as e:
            raise SourceError(f"{self.path}:{self.dataset}: cannot read z {z0}..{z1 - 1}: "
                              f"{e}") from None
        return np.ascontiguousarray(arr, dtype=self.dtype)

    def fingerprint(self, z0: int, z1: int) -> str:
        return _stat_fp([self.path])

    def close(self) -> None:
        self._f.close()


# ----- zarr / N5 / neuroglancer precomputed (tensorstore) -------------------------------


def _json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in file ``path``; None when it can't be read or is not an object."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def tensorstore_driver(path: str) -> str | None:
    """The tensorstore driver of a directory (None: not a volume it knows, or its metadata
    file is unreadable or not a JSON object)."""
    p = Path(path)
    if (p / ".zarray").is_file():
        return "zarr"
    zj = p / "zarr.json"
    if zj.is_file():
        doc = _json_object(zj)
        return "zarr3" if doc is not None and doc.get("node_type") == "array" else None
    attrs = p / "attributes.json"
    if attrs.is_file():
        doc = _json_object(attrs)
        if doc is None:
            return None
        if "dimensions" in doc:
            return "n5"
    info = p / "info"
    if info.is_file():
        doc = _json_object(info)
        return "neuroglancer_precomputed" if doc is not None and "scales" in doc else None
    return None


class TensorstoreVolume(Source):
    """A zarr (v2/v3), N5 or neuroglancer precomputed volume read with ``tensorstore``."""

    kind = "tensorstore"

    def __init__(self, path: str, driver: str) -> None:
        ts = _need("tensorstore", "zarr, N5 and precomputed volumes")
        self.path, self.driver = path, driver
        try:
            arr = ts.open({"driver": driver, "kvstore": {"driver": "file", "path": path},
                           "open": True}, read=True,
                          context=ts.Context({"cache_pool": {"total_bytes_limit": 0}})
                          ).result()
        except Exception as e:
            raise SourceError(f"{path}: cannot open it as {driver}: {e}") from None
        labels = [lab.lower() for lab in arr.domain.labels]
        shape = [int(s) for s in arr.shape]
        origin = [int(v) for v in arr.domain.inclusive_min]
        if all(labels) and {"x", "y", "z"} <= set(labels):
            perm = [labels.index(a) for a in ("z", "y", "x")]
            extra = [i for i in range(len(labels)) if i not in perm]
        elif driver == "n5":
            perm, extra = list(range(len(shape)))[::-1][:3], []
        else:
            perm, extra = list(range(len(shape)))[-3:], list(range(len(shape) - 3))
        if len(shape) < 2 or any(shape[i] != 1 for i in extra) or (
                len(shape) == 2 and driver != "n5"):
            raise SourceError(f"{path}: {driver} array of shape {shape} "
                              f"(labels {labels}); ingest reads a single-channel 3-D volume")
        if len(shape) == 2:
            perm = [1, 0]
        self._arr, self._perm, self._extra, self._origin = arr, perm, extra, origin
        zyx = [shape[i] for i in perm]
        self.shape = (zyx[0], zyx[1], zyx[2]) if len(zyx) == 3 else (1, zyx[0], zyx[1])
        self.dtype = np.dtype(arr.dtype.numpy_dtype)
        self.description = (f"{path} ({driver} {self.shape[2]}x{self.shape[1]}x"
                            f"{self.shape[0]} {self.dtype})")
        units = list(arr.dimension_units or [None] * len(shape))
        vs: list[float | None] = []
        for i in perm[::-1]:  # x, y, z
            u = units[i]
            nm = _UNIT_NM.get(u.base_unit) if u is not None else None
            vs.append(u.multiplier * nm if (u is not None and nm is not None) else None)
        self.voxel_size = tuple([*vs, None, None, None][:3])  # type: ignore[assignment]

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "driver": self.driver}

    def read(self, box: Box) -> np.ndarray:
        x0, y0, z0, x1, y1, z1 = box
        want = {"z": (z0, z1), "y": (y0, y1), "x": (x0, x1)}
        index: list[Any] = [slice(None)] * len(self._arr.shape)
        axes = ("z", "y", "x") if len(self._perm) == 3 else ("y", "x")
        for a, i in zip(axes, self._perm, strict=True):
            lo, hi = want[a]
            index[i] = slice(self._origin[i] + lo, self._origin[i] + hi)
        for i in self._extra:
            index[i] = self._origin[i]
        try:
            arr = self._arr[tuple(index)].read().result()
        except Exception as e:
            raise SourceError(f"{self.path}: cannot read box {list(box)}: {e}") from None
        order = sorted(range(len(axes)), key=lambda k: self._perm[k])  # native dims kept
        # ``arr`` has the kept dims in native order; put them in (z, y, x) order
        native_to_zyx = [order.index(k) for k in range(len(axes))]
        arr = np.transpose(arr, native_to_zyx)
        if arr.ndim == 2:
            arr = arr[None]
        return np.ascontiguousarray(arr, dtype=self.dtype)

    def fingerprint(self, z0: int, z1: int) -> str:
        return _stat_fp([os.path.join(self.path, n) for n in
                         ("zarr.json", ".zarray", "attributes.json", "info")])


# ----- opening --------------------------------------------------------------------------


def open_source(path: str, *, glob: str | None = None, dataset: str | None = None,
                ) -> Source:
    """The :class:`Source` at ``path`` (see the module docstring); :class:`SourceError`
    saying what is wrong (or :class:`MissingReader`: what to install)."""
    if dataset is None and not os.path.exists(path) and ":" in path:
        head, _, tail = path.rpartition(":")
        if head.lower().endswith(HDF5_EXTS) and os.path.isfile(head):
            path, dataset = head, tail
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{path}: no such file or directory")
    if p.is_dir():
        driver = tensorstore_driver(path)
        if driver is not None:
            return TensorstoreVolume(path, driver)
        return SliceStack.open(path, glob)
    if not os.access(path, os.R_OK):
        raise SourceError(f"{path}: not readable (permission denied)")
    ext = p.suffix.lower()
    if ext in (".tif", ".tiff"):
        return TiffVolume(path)
    if ext in HDF5_EXTS:
        return Hdf5Volume(path, dataset)
    raise SourceError(f"{path}: unknown kind of source (a directory of slices, .tif/.tiff, "
                      ".h5/.hdf5, or a zarr / N5 / precomputed directory)")


_OPEN: dict[str, Source] = {}
_OPEN_LOCK = threading.Lock()


def reopen(spec: dict[str, Any]) -> Source:
    """The source described by ``spec`` (from :meth:`Source.spec`), opened once per process
    without checking the slices again (the process that made the spec did)."""
    key = json.dumps(spec, sort_keys=True)
    with _OPEN_LOCK:
        src = _OPEN.get(key)
        if src is not None:
            return src
        kind = spec["kind"]
        if kind == "slices":
            shape = tuple(spec["shape"])
            src = SliceStack(list(spec["files"]), spec["fmt"], shape,  # type: ignore[arg-type]
                             np.dtype(spec["dtype"]), list(spec["how"]), spec["directory"],
                             spec["pattern"])
        elif kind == "tiff":
            src = TiffVolume(spec["path"])
        elif kind == "hdf5":
            src = Hdf5Volume(spec["path"], spec["dataset"])
        elif kind == "tensorstore":
            src = TensorstoreVolume(spec["path"], spec["driver"])
        else:
            raise SourceError(f"unknown source kind {kind!r}")
        _OPEN[key] = src
        return src
