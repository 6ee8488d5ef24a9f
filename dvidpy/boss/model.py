"""The Boss's resources as views of dvidpy's: :class:`BossModel`.

==========================  ===============================================================
Boss                        dvidpy
==========================  ===============================================================
collection                  a record (name, description, creator, public); its grants are
                            kept like a repo's under the pseudo-root ``boss:collection/C``
coordinate frame            a record (extents, voxel size and unit); grants under
                            ``boss:coord/F``
experiment ``C/E``          a repo (alias ``C/E``); its frame gives the voxel size of the
                            channels; Boss calls act on the repo's ``master`` HEAD
channel                     a data instance of the experiment's repo: image ``uint8`` ->
                            ``uint8blk``, ``uint16`` -> ``uint16blk``, ``uint32`` ->
                            ``uint32blk``, ``uint64`` -> ``uint64blk``; annotation (uint64)
                            -> ``labelmap``. Resolution ``k`` of an image channel is the
                            pyramid instance ``NAME_k``; of an annotation channel the
                            labelmap's scale ``k``
metadata ``/v1/meta``       string key -> string value per collection/experiment/channel
==========================  ===============================================================

Records live in the metadata store as JSON under ``boss/...`` (collections ``boss/coll/C``,
frames ``boss/coord/F``, experiments ``boss/exp/C/E``, channels ``boss/chan/C/E/CH``,
metadata ``boss/meta/C[/E[/CH]]\\x00KEY``), read from the store on every call (several
servers may share it) and changed under one lock (cross-server when coordinated).

Names follow the Boss's rule ``^[a-zA-Z0-9_-]+$`` (at most 255 characters) and are unique
per parent. Deleting a collection or frame needs it unreferenced (the Boss's rule);
deleting an experiment or channel removes the Boss view only: the repo or instance and its
data stay readable through DVID's API (dvidpy deletes no data), and a channel made again
under the same name gets a fresh instance (``NAME~1``, ...).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from dvidpy.boss.errors import (
    INTEGRITY_ERROR,
    INVALID_POST_ARGUMENT,
    RESOURCE_EXISTS,
    BossError,
    not_found,
)
from dvidpy.errors import BadRequest, DvidError
from dvidpy.keys import meta_key
from storage import KeyRange

if TYPE_CHECKING:
    from dvidpy.datatype import Datatype
    from dvidpy.repo import Repo, RepoManager

NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,255}\Z")  # \Z: "$" would let a final newline in
VOXEL_UNITS = ("nanometers", "micrometers", "millimeters", "centimeters")
TIME_UNITS = ("nanoseconds", "microseconds", "milliseconds", "seconds")
HIERARCHY_METHODS = ("anisotropic", "isotropic")
CHANNEL_TYPES = ("image", "annotation")
DATATYPES = ("uint8", "uint16", "uint32", "uint64")
DOWNSAMPLE_STATES = ("NOT_DOWNSAMPLED", "QUEUED", "IN_PROGRESS", "DOWNSAMPLED", "FAILED")
#: image channel datatype -> DVID datatype of its instance
IMAGE_TYPES = {"uint8": "uint8blk", "uint16": "uint16blk", "uint32": "uint32blk",
               "uint64": "uint64blk"}
#: block size of the instances made for channels
CHANNEL_BLOCK = (64, 64, 64)
MAX_LEVELS = 20
_UNIT_NAMES = {"nanometers": "nanometers", "micrometers": "micrometers",
               "millimeters": "millimeters", "centimeters": "centimeters"}

COLLECTION_FIELDS = ("name", "public", "description", "experiments", "creator")
FRAME_FIELDS = ("name", "description", "x_start", "x_stop", "y_start", "y_stop", "z_start",
                "z_stop", "x_voxel_size", "y_voxel_size", "z_voxel_size", "voxel_unit")
EXPERIMENT_FIELDS = ("channels", "name", "public", "description", "collection",
                     "coord_frame", "num_hierarchy_levels", "hierarchy_method",
                     "num_time_samples", "time_step", "time_step_unit", "creator")
CHANNEL_FIELDS = ("name", "public", "description", "experiment", "default_time_sample",
                  "type", "base_resolution", "datatype", "creator", "sources",
                  "downsample_status", "related", "storage_type", "bucket", "cv_path")
#: fields a PUT may change (the Boss's update serializers; anything else is a 400)
UPDATABLE = {
    "collection": ("name", "public", "description"),
    "coord": ("name", "description"),
    "experiment": ("name", "public", "description", "num_hierarchy_levels",
                   "hierarchy_method", "num_time_samples", "time_step", "time_step_unit"),
    "channel": ("name", "public", "description", "default_time_sample", "base_resolution",
                "sources", "related", "bucket", "cv_path", "storage_type"),
}


def check_name(name: Any, what: str) -> str:
    """``name`` when it follows the Boss's name rule; else a 400 saying so."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BossError(f"Invalid {what} name {name!r}: use 1 to 255 of a-z, A-Z, 0-9, _ "
                        "and -", INVALID_POST_ARGUMENT)
    return name


def _bad(msg: str) -> BossError:
    return BossError(msg, INVALID_POST_ARGUMENT)


def _int(d: Mapping[str, Any], k: str, default: Any = ..., lo: int = -(2**31),
         hi: int = 2**31 - 1, null: bool = False) -> Any:
    if k not in d or (d[k] is None and not null) or d[k] == "":
        if default is ...:
            raise _bad(f"{k} is required")
        return default
    v = d[k]
    if v is None:
        return None
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]{1,12}", v.strip()):
        v = int(v)  # form-encoded bodies carry strings
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(f"{k} must be an integer, not {v!r}")
    if not lo <= v <= hi:
        raise _bad(f"{k} must be in {lo}..{hi}, not {v}")
    return v


def _float(d: Mapping[str, Any], k: str) -> float:
    v = d.get(k)
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
            or not 0 < v < 1e12:
        raise _bad(f"{k} must be a positive number, not {v!r}")
    return float(v)


def _str(d: Mapping[str, Any], k: str, default: str = "", limit: int = 4096) -> str:
    v = d.get(k, default)
    if v is None:
        v = default
    if not isinstance(v, str):
        raise _bad(f"{k} must be a string")
    if len(v) > limit:
        raise _bad(f"{k} is longer than {limit} characters")
    return v


def _choice(d: Mapping[str, Any], k: str, choices: tuple[str, ...], default: Any = ...,
            null: bool = False) -> Any:
    if k not in d or d[k] is None or d[k] == "":
        if null and k in d:
            return None
        if default is ...:
            raise _bad(f"{k} is required (one of {', '.join(choices)})")
        return default
    v = d[k]
    if v not in choices:
        raise _bad(f"{k} must be one of {', '.join(choices)}, not {v!r}")
    return v


def _bool(d: Mapping[str, Any], k: str, default: bool = False) -> bool:
    v = d.get(k, default)
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if not isinstance(v, bool):
        raise _bad(f"{k} must be true or false")
    return v


def _names(d: Mapping[str, Any], k: str) -> list[str]:
    v = d.get(k, [])
    if v is None:
        return []
    if isinstance(v, str):
        v = [v] if v else []
    if not isinstance(v, list):
        raise _bad(f"{k} must be a list of channel names")
    return [check_name(x, "channel") for x in v]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class BossModel:
    """The Boss's resources over a :class:`~dvidpy.repo.RepoManager` (module docstring)."""

    PREFIX = "boss/"

    def __init__(self, mgr: RepoManager) -> None:
        self.mgr = mgr
        self.engine = mgr.meta_engine
        self.lock = mgr.coord.lock("boss")

    # ----- storage ----------------------------------------------------------------------

    def _key(self, *parts: str) -> bytes:
        return meta_key(self.PREFIX + "/".join(parts))

    def _get(self, *parts: str) -> dict[str, Any] | None:
        raw = self.engine.get(self._key(*parts))
        return None if raw is None else json.loads(raw)

    def _found(self, *parts: str) -> dict[str, Any]:
        """The record at ``parts``; 404 naming the last part when it is not a valid name
        or there is no such record."""
        rec = self._get(*parts) if NAME_RE.match(parts[-1]) else None
        if rec is None:
            raise not_found(parts[-1])
        return rec

    def _absent(self, message: str, *parts: str) -> None:
        """400 RESOURCE_EXISTS with ``message`` when there is a record at ``parts``."""
        if self._get(*parts) is not None:
            raise BossError(message, RESOURCE_EXISTS)

    def _put(self, rec: dict[str, Any], *parts: str) -> None:
        self.engine.put(self._key(*parts), json.dumps(rec).encode())

    def _delete(self, *parts: str) -> None:
        self.engine.delete(self._key(*parts))

    def _scan(self, *parts: str) -> Iterator[dict[str, Any]]:
        pre = self._key(*parts) + b"/"
        for _, raw in self.engine.scan(KeyRange.prefix(pre)):
            yield json.loads(raw)

    # ----- collections ------------------------------------------------------------------

    def collections(self) -> list[dict[str, Any]]:
        """Every collection record, by name."""
        return sorted(self._scan("coll"), key=lambda r: r["name"])

    def collection(self, name: str) -> dict[str, Any]:
        """The record of collection ``name``; 404 when there is none."""
        return self._found("coll", name)

    def create_collection(self, name: str, body: Mapping[str, Any], creator: str) -> dict:
        """A new collection (400 when the name is taken or a field is bad)."""
        check_name(name, "collection")
        rec = {"name": name, "description": _str(body, "description"),
               "public": _bool(body, "public"), "creator": creator, "created": _now()}
        with self.lock:
            self._absent(f"Collection {name} already exists", "coll", name)
            self._put(rec, "coll", name)
        return rec

    def update_collection(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT: description, public, or a new name (experiments move with it)."""
        _check_updatable("collection", body)
        with self.lock:
            rec = self.collection(name)
            new = dict(rec)
            new["description"] = _str(body, "description", rec["description"])
            new["public"] = _bool(body, "public", rec["public"])
            new_name = check_name(body.get("name", name), "collection")
            if new_name != name:
                self._absent(f"Collection {new_name} already exists", "coll", new_name)
                new["name"] = new_name
                self._rename_collection(name, new_name)
            self._put(new, "coll", new_name)
            return new

    def _rename_collection(self, old: str, new: str) -> None:
        for exp in list(self._scan("exp", old)):
            exp["collection"] = new
            self._put(exp, "exp", new, exp["name"])
            self._delete("exp", old, exp["name"])
            for ch in list(self._scan("chan", old, exp["name"])):
                self._put(ch, "chan", new, exp["name"], ch["name"])
                self._delete("chan", old, exp["name"], ch["name"])
            self._move_meta(f"{old}/{exp['name']}", f"{new}/{exp['name']}", True)
        self._move_meta(old, new, False)
        self._delete("coll", old)

    def delete_collection(self, name: str) -> None:
        """Remove a collection that holds no experiment (the Boss's rule)."""
        with self.lock:
            self.collection(name)
            if any(True for _ in self._scan("exp", name)):
                raise BossError(f"Collection {name} has experiments that reference it and "
                                "cannot be deleted. Please delete the experiments first.",
                                INTEGRITY_ERROR)
            self._delete("coll", name)
            self._drop_meta(name)

    # ----- coordinate frames ------------------------------------------------------------

    def frames(self) -> list[dict[str, Any]]:
        """Every coordinate frame record, by name."""
        return sorted(self._scan("coord"), key=lambda r: r["name"])

    def frame(self, name: str) -> dict[str, Any]:
        """The record of frame ``name``; 404 when there is none."""
        return self._found("coord", name)

    def create_frame(self, name: str, body: Mapping[str, Any], creator: str) -> dict:
        """A new coordinate frame: ``x_start < x_stop`` etc. (int32), positive voxel
        sizes, a unit of :data:`VOXEL_UNITS`."""
        check_name(name, "coordinate frame")
        rec: dict[str, Any] = {"name": name, "description": _str(body, "description")}
        for a in "xyz":
            lo = _int(body, f"{a}_start")
            hi = _int(body, f"{a}_stop")
            if lo >= hi:
                raise _bad(f"{a}_start {lo} must be less than {a}_stop {hi}")
            rec[f"{a}_start"], rec[f"{a}_stop"] = lo, hi
        for a in "xyz":
            rec[f"{a}_voxel_size"] = _float(body, f"{a}_voxel_size")
        rec["voxel_unit"] = _choice(body, "voxel_unit", VOXEL_UNITS)
        rec["creator"] = creator
        with self.lock:
            self._absent(f"Coordinate frame {name} already exists", "coord", name)
            self._put(rec, "coord", name)
        return rec

    def update_frame(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT: description or a new name (experiments follow)."""
        _check_updatable("coord", body)
        with self.lock:
            rec = dict(self.frame(name))
            rec["description"] = _str(body, "description", rec["description"])
            new_name = check_name(body.get("name", name), "coordinate frame")
            if new_name != name:
                self._absent(f"Coordinate frame {new_name} already exists", "coord", new_name)
                rec["name"] = new_name
                for exp in self._all_experiments():
                    if exp["coord_frame"] == name:
                        exp["coord_frame"] = new_name
                        self._put(exp, "exp", exp["collection"], exp["name"])
                self._delete("coord", name)
            self._put(rec, "coord", new_name)
            return rec

    def delete_frame(self, name: str) -> None:
        """Remove a frame no experiment uses (the Boss's rule)."""
        with self.lock:
            self.frame(name)
            users = [e["name"] for e in self._all_experiments() if e["coord_frame"] == name]
            if users:
                raise BossError(f"Coordinate frame {name} has experiments that reference it "
                                f"and cannot be deleted ({', '.join(users)}). Please delete "
                                "the experiments first.", INTEGRITY_ERROR)
            self._delete("coord", name)

    # ----- experiments ------------------------------------------------------------------

    def _all_experiments(self) -> list[dict[str, Any]]:
        return list(self._scan("exp"))

    def experiments(self, coll: str) -> list[dict[str, Any]]:
        """The experiment records of collection ``coll`` (404 when it does not exist)."""
        self.collection(coll)
        return sorted(self._scan("exp", coll), key=lambda r: r["name"])

    def experiment(self, coll: str, exp: str) -> dict[str, Any]:
        """The record of experiment ``coll/exp``; 404 when either does not exist."""
        self.collection(coll)
        return self._found("exp", coll, exp)

    def repo_of(self, exp: Mapping[str, Any]) -> Repo:
        """The repo of an experiment record (400 when it is gone from the server)."""
        try:
            repo, _ = self.mgr.resolve(exp["repo"])
        except BadRequest:
            raise BossError(f"the repo {exp['repo']} of experiment {exp['name']} is not on "
                            "this server", INTEGRITY_ERROR) from None
        return repo

    def create_experiment(self, coll: str, name: str, body: Mapping[str, Any],
                          creator: str) -> dict[str, Any]:
        """A new experiment: a new repo aliased ``coll/name``."""
        self.collection(coll)
        check_name(name, "experiment")
        frame_name = body.get("coord_frame")
        if not isinstance(frame_name, str) or not frame_name:
            raise _bad("This request requires a valid coordinate frame")
        self.frame(frame_name)
        rec = self._experiment_fields(body, {"coord_frame": frame_name})
        rec.update({"name": name, "collection": coll, "creator": creator,
                    "description": _str(body, "description"),
                    "public": _bool(body, "public")})
        with self.lock:
            self._absent(f"Experiment {name} already exists in collection {coll}",
                         "exp", coll, name)
            repo = self.mgr.create_repo(f"{coll}/{name}", rec["description"])
            rec["repo"] = repo.root
            self._put(rec, "exp", coll, name)
        return rec

    @staticmethod
    def _experiment_fields(body: Mapping[str, Any], old: Mapping[str, Any]) -> dict:
        out = dict(old)
        out["num_hierarchy_levels"] = _int(body, "num_hierarchy_levels",
                                           old.get("num_hierarchy_levels", 1), 1, MAX_LEVELS)
        out["hierarchy_method"] = _choice(body, "hierarchy_method", HIERARCHY_METHODS,
                                          old.get("hierarchy_method", "anisotropic"))
        out["num_time_samples"] = _int(body, "num_time_samples",
                                       old.get("num_time_samples", 1), 1, 2**31 - 1)
        out["time_step"] = _int(body, "time_step", old.get("time_step"), 0, 2**31 - 1,
                                null=True)
        out["time_step_unit"] = _choice(body, "time_step_unit", TIME_UNITS,
                                        old.get("time_step_unit"), null=True)
        return out

    def update_experiment(self, coll: str, name: str, body: Mapping[str, Any]) -> dict:
        """PUT: description, public, hierarchy, time fields, name."""
        _check_updatable("experiment", body)
        with self.lock:
            rec = self.experiment(coll, name)
            new = self._experiment_fields(body, rec)
            new["description"] = _str(body, "description", rec["description"])
            new["public"] = _bool(body, "public", rec["public"])
            chans = list(self._scan("chan", coll, name))
            if any(c["default_time_sample"] >= new["num_time_samples"] for c in chans):
                raise _bad("num_time_samples must exceed every channel's default_time_sample")
            new_name = check_name(body.get("name", name), "experiment")
            if new_name != name:
                self._absent(f"Experiment {new_name} already exists", "exp", coll, new_name)
                new["name"] = new_name
                for ch in chans:
                    ch["experiment"] = new_name
                    self._put(ch, "chan", coll, new_name, ch["name"])
                    self._delete("chan", coll, name, ch["name"])
                self._move_meta(f"{coll}/{name}", f"{coll}/{new_name}", True)
                self._delete("exp", coll, name)
            self._put(new, "exp", coll, new_name)
            if new["num_time_samples"] != rec["num_time_samples"]:
                self._sync_time_samples(new, chans)
            return new

    def _sync_time_samples(self, erec: Mapping[str, Any], chans: list[dict]) -> None:
        """Give the instances of image channels (and their pyramid levels) the
        experiment's number of time samples."""
        repo = self.repo_of(erec)
        n = int(erec["num_time_samples"])
        for ch in chans:
            if ch["type"] != "image":
                continue
            base = ch["instance"]
            for name, inst in list(repo.instances.items()):
                if name == base or re.fullmatch(re.escape(base) + r"_[0-9]+", name):
                    cfg = dict(inst.meta.config)
                    if n > 1:
                        cfg["TimeSamples"] = n
                    else:
                        cfg.pop("TimeSamples", None)
                    inst.meta.config = cfg
        self.mgr.save_repo(repo)

    def delete_experiment(self, coll: str, name: str) -> None:
        """Remove the Boss view of an experiment and its channels (the repo stays)."""
        with self.lock:
            self.experiment(coll, name)
            for ch in list(self._scan("chan", coll, name)):
                self._delete("chan", coll, name, ch["name"])
            self._delete("exp", coll, name)
            self._drop_meta(f"{coll}/{name}")

    # ----- channels ---------------------------------------------------------------------

    def channels(self, coll: str, exp: str) -> list[dict[str, Any]]:
        """The channel records of an experiment."""
        self.experiment(coll, exp)
        return sorted(self._scan("chan", coll, exp), key=lambda r: r["name"])

    def channel(self, coll: str, exp: str, name: str) -> dict[str, Any]:
        """The record of a channel; 404 when it (or its parents) does not exist."""
        self.experiment(coll, exp)
        return self._found("chan", coll, exp, name)

    def _links(self, coll: str, exp: str, body: Mapping[str, Any],
               old: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        src = _names(body, "sources") if "sources" in body else list(old.get("sources", []))
        rel = _names(body, "related") if "related" in body else list(old.get("related", []))
        if set(src) & set(rel):
            raise _bad("Related channels have to be different from source channels")
        for n in src + rel:
            if self._get("chan", coll, exp, n) is None:
                raise _bad(f"Invalid channel names {n} in the list of source/related "
                           "channels")
        return src, rel

    def create_channel(self, coll: str, exp: str, name: str, body: Mapping[str, Any],
                       creator: str) -> dict[str, Any]:
        """A new channel: a new instance in the experiment's repo at its master HEAD."""
        erec = self.experiment(coll, exp)
        check_name(name, "channel")
        ctype = _choice(body, "type", CHANNEL_TYPES)
        dtype = _choice(body, "datatype", DATATYPES)
        if ctype == "annotation" and dtype != "uint64":
            raise _bad("annotation channels must be uint64")
        dts = _int(body, "default_time_sample", 0, 0, erec["num_time_samples"] - 1)
        base = _int(body, "base_resolution", 0, 0, MAX_LEVELS)
        storage = _choice(body, "storage_type", ("spdb",), "spdb")
        for k in ("bucket", "cv_path"):
            if body.get(k):
                raise _bad(f"{k} is not supported by this server (channels live in dvidpy's "
                           "stores)")
        frame = self.frame(erec["coord_frame"])
        with self.lock:
            self._absent(f"Channel {name} already exists in experiment {exp}",
                         "chan", coll, exp, name)
            src, rel = self._links(coll, exp, body, {})
            repo = self.repo_of(erec)
            inst_name = self._free_instance_name(repo, name)
            settings = self._instance_settings(erec, frame, ctype, dtype, inst_name)
            try:
                node = repo.dag.branch_leaf("")
            except BadRequest as e:
                raise BossError(e.message) from None
            self.mgr.new_instance(repo, node, settings)
            rec = {"name": name, "description": _str(body, "description"),
                   "experiment": exp, "default_time_sample": dts, "type": ctype,
                   "base_resolution": base, "datatype": dtype, "creator": creator,
                   "sources": src, "related": rel, "downsample_status": "NOT_DOWNSAMPLED",
                   "storage_type": storage, "bucket": None, "cv_path": None,
                   "public": _bool(body, "public"), "instance": inst_name}
            self._put(rec, "chan", coll, exp, name)
        return rec

    @staticmethod
    def _instance_settings(erec: Mapping[str, Any], frame: Mapping[str, Any], ctype: str,
                           dtype: str, name: str) -> dict[str, str]:
        vs = ",".join(repr(float(frame[f"{a}_voxel_size"])) for a in "xyz")
        common = {"dataname": name, "blocksize": ",".join(map(str, CHANNEL_BLOCK)),
                  "voxelsize": vs, "voxelunits": _UNIT_NAMES[frame["voxel_unit"]]}
        if ctype == "annotation":
            return {**common, "typename": "labelmap",
                    "maxdownreslevel": str(erec["num_hierarchy_levels"] - 1)}
        return {**common, "typename": IMAGE_TYPES[dtype],
                "timesamples": str(erec["num_time_samples"])}

    @staticmethod
    def _free_instance_name(repo: Repo, name: str) -> str:
        """``name``, else ``name~1``, ``name~2``, ...: the first free of the repo's
        instance names and of their pyramid levels ``_k`` and time samples ``.tN``."""
        taken = set(repo.instances)
        for k in range(10000):
            cand = name if k == 0 else f"{name}~{k}"
            if cand in taken or any(t.startswith((cand + "_", cand + ".t")) for t in taken):
                continue
            m = re.match(r"^(.+)_([0-9]+)$", cand)
            if m and m.group(1) in taken:
                continue
            return cand
        raise BossError(f"no free instance name for channel {name}")

    def update_channel(self, coll: str, exp: str, name: str, body: Mapping[str, Any]) -> dict:
        """PUT: description, public, default_time_sample, base_resolution, sources,
        related, name (the instance keeps its name)."""
        _check_updatable("channel", body)
        for k in ("bucket", "cv_path"):
            if body.get(k):
                raise _bad(f"{k} is not supported by this server")
        _choice(body, "storage_type", ("spdb",), "spdb")
        with self.lock:
            erec = self.experiment(coll, exp)
            rec = self.channel(coll, exp, name)
            new = dict(rec)
            new["description"] = _str(body, "description", rec["description"])
            new["public"] = _bool(body, "public", rec["public"])
            new["default_time_sample"] = _int(body, "default_time_sample",
                                              rec["default_time_sample"], 0,
                                              erec["num_time_samples"] - 1)
            new["base_resolution"] = _int(body, "base_resolution", rec["base_resolution"], 0,
                                          MAX_LEVELS)
            new["sources"], new["related"] = self._links(coll, exp, body, rec)
            if name in new["sources"] + new["related"]:
                raise _bad("a channel can't be its own source or related channel")
            new_name = check_name(body.get("name", name), "channel")
            if new_name != name:
                self._absent(f"Channel {new_name} already exists", "chan", coll, exp, new_name)
                new["name"] = new_name
                for ch in self._scan("chan", coll, exp):
                    changed = False
                    for k in ("sources", "related"):
                        if name in ch[k]:
                            ch[k] = [new_name if n == name else n for n in ch[k]]
                            changed = True
                    if changed:
                        self._put(ch, "chan", coll, exp, ch["name"])
                self._move_meta(f"{coll}/{exp}/{name}", f"{coll}/{exp}/{new_name}", False)
                self._delete("chan", coll, exp, name)
            self._put(new, "chan", coll, exp, new_name)
            return new

    def set_channel(self, coll: str, exp: str, name: str, **fields: Any) -> dict[str, Any]:
        """Change stored fields of a channel record (downsample status, ...)."""
        with self.lock:
            rec = self.channel(coll, exp, name)
            rec.update(fields)
            self._put(rec, "chan", coll, exp, name)
            return rec

    def delete_channel(self, coll: str, exp: str, name: str) -> None:
        """Remove the Boss view of a channel that no channel names as its source."""
        with self.lock:
            self.channel(coll, exp, name)
            users = [c["name"] for c in self._scan("chan", coll, exp) if name in c["sources"]]
            if users:
                raise BossError(f"Channel {name} is the source channel of other channels "
                                f"({', '.join(users)}) and cannot be deleted",
                                INTEGRITY_ERROR)
            for ch in list(self._scan("chan", coll, exp)):
                if name in ch["related"]:
                    ch["related"] = [n for n in ch["related"] if n != name]
                    self._put(ch, "chan", coll, exp, ch["name"])
            self._delete("chan", coll, exp, name)
            self._drop_meta(f"{coll}/{exp}/{name}")

    def instance(self, erec: Mapping[str, Any], crec: Mapping[str, Any]) -> Datatype:
        """The data instance of a channel."""
        repo = self.repo_of(erec)
        inst = self.mgr.find_instance(repo, crec["instance"])
        if inst is None:
            raise BossError(f"the instance {crec['instance']} of channel {crec['name']} is "
                            "missing from its repo", INTEGRITY_ERROR)
        return inst

    # ----- metadata ---------------------------------------------------------------------

    def _meta_key(self, lookup: str, key: str = "") -> bytes:
        return meta_key(f"{self.PREFIX}meta/{lookup}\x00{key}")

    def meta_keys(self, lookup: str) -> list[str]:
        """Metadata keys of a resource (``C``, ``C/E`` or ``C/E/CH``), sorted."""
        pre = self._meta_key(lookup)
        return [k[len(pre):].decode() for k, _ in self.engine.scan(KeyRange.prefix(pre))]

    def meta_get(self, lookup: str, key: str) -> str | None:
        """The value of ``key`` or None."""
        raw = self.engine.get(self._meta_key(lookup, key))
        return None if raw is None else raw.decode()

    def meta_put(self, lookup: str, key: str, value: str, create: bool) -> None:
        """Create (400 when ``key`` exists) or update (400 when it does not) ``key``."""
        if not key or len(key) > 1024 or "\x00" in key:
            raise _bad("metadata key must be 1 to 1024 characters (no NUL)")
        if len(value) > 1 << 20:
            raise _bad("metadata value is over 1 MiB")
        with self.lock:
            have = self.meta_get(lookup, key) is not None
            if create and have:
                raise _bad(f"Invalid request. The key {key} already exists")
            if not create and not have:
                raise _bad(f"Invalid request. The key {key} does not exists")
            self.engine.put(self._meta_key(lookup, key), value.encode())

    def meta_delete(self, lookup: str, key: str) -> None:
        """Delete ``key`` (400 when absent, the Boss's answer)."""
        with self.lock:
            if self.meta_get(lookup, key) is None:
                raise _bad(f"[ERROR]- Key {key} not found ")
            self.engine.delete(self._meta_key(lookup, key))

    def _drop_meta(self, lookup: str) -> None:
        for k in self.meta_keys(lookup):
            self.engine.delete(self._meta_key(lookup, k))

    def _move_meta(self, old: str, new: str, deep: bool) -> None:
        """Move the metadata of ``old`` (and, ``deep``, of everything under it)."""
        lookups = [old]
        if deep:
            pre = meta_key(f"{self.PREFIX}meta/{old}/")
            seen = {k[len(pre):].split(b"\x00", 1)[0].decode()
                    for k, _ in self.engine.scan(KeyRange.prefix(pre), keys_only=True)}
            lookups += [f"{old}/{s}" for s in sorted(seen)]
        for lk in lookups:
            for k in self.meta_keys(lk):
                v = self.meta_get(lk, k)
                assert v is not None
                self.engine.put(self._meta_key(new + lk[len(old):], k), v.encode())
                self.engine.delete(self._meta_key(lk, k))


def _check_updatable(kind: str, body: Mapping[str, Any]) -> None:
    extra = sorted(set(body) - set(UPDATABLE[kind]))
    if extra:
        raise _bad(f"Cannot update the following readonly fields:{extra}.")


def view(rec: Mapping[str, Any], fields: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """The Boss's JSON of a record: ``fields`` in order (plus ``extra``)."""
    out = {k: rec.get(k) for k in fields}
    out.update(extra)
    return out


__all__ = ["BossModel", "DvidError", "check_name", "view"]
