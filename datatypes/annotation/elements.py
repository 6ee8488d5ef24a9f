"""Annotation elements: validation of posted JSON, DVID's JSON form, and packed lists.

An element is ``{"Pos": [x,y,z], "Kind": k, "Tags": [...]|null, "Prop": {...}|null,
"Rels": [{"Rel": r, "To": [x,y,z]}, ...]|null}``. Output always has the fields in that
order (DVID's struct order); ``Tags``/``Prop``/``Rels`` are echoed as posted: omitted or
``null`` gives ``null``, ``[]``/``{}`` stay ``[]``/``{}``. ``Prop`` keys are emitted sorted
(Go marshals maps sorted). Non-ASCII text is emitted as UTF-8 (Go does not ``\\u``-escape).

:class:`ElemList` is the stored form of a list of elements (a block, a label, a tag): the
positions and kinds as numpy arrays (so label/tag bookkeeping never parses JSON) plus
each element's JSON bytes. ``cut[i]`` is the length of element *i*'s JSON before its
``,"Rels":...`` part, so the element "without relationships" (DVID's ``ElementNR``) is
``json[:cut] + b"}"``; lists stored under labels and tags hold those NR forms.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dvidpy.errors import BadRequest

#: Kind name -> code (DVID's ElementType values).
KINDS = {"Unknown": 0, "PostSyn": 1, "PreSyn": 2, "Gap": 3, "Note": 4}
KIND_NAMES = {v: k for k, v in KINDS.items()}
RELS = ("UnknownRelationship", "PostSynTo", "PreSynTo", "ConvergentTo", "GroupedWith")
_RELSET = frozenset(RELS)
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _point(v: Any, what: str) -> tuple[int, int, int]:
    if not isinstance(v, list) or len(v) != 3:
        raise BadRequest(f"{what} must be an array of 3 integers, got {v!r}")
    out = []
    for c in v:
        if isinstance(c, bool) or not isinstance(c, int):
            raise BadRequest(f"{what} must be an array of 3 integers, got {v!r}")
        if not I32_MIN <= c <= I32_MAX:
            raise BadRequest(f"{what} coordinate {c} is outside the int32 range")
        out.append(c)
    return out[0], out[1], out[2]


@dataclass
class Element:
    """One validated element (``tags``/``prop``/``rels`` None = absent/null)."""

    pos: tuple[int, int, int]
    kind: str
    tags: list[str] | None = None
    prop: dict[str, str] | None = None
    rels: list[tuple[str, tuple[int, int, int]]] | None = None

    @property
    def kind_code(self) -> int:
        """Numeric kind (see :data:`KINDS`)."""
        return KINDS[self.kind]

    def head(self) -> str:
        """JSON text up to (excluding) ``,"Rels":`` and the closing brace."""
        x, y, z = self.pos
        tags = "null" if self.tags is None else _dumps(self.tags)
        prop = "null" if self.prop is None else _dumps(dict(sorted(self.prop.items())))
        return f'{{"Pos":[{x},{y},{z}],"Kind":"{self.kind}","Tags":{tags},"Prop":{prop}'

    def rels_json(self) -> str:
        """The ``Rels`` value as JSON."""
        if self.rels is None:
            return "null"
        return "[" + ",".join(f'{{"Rel":"{r}","To":[{t[0]},{t[1]},{t[2]}]}}'
                              for r, t in self.rels) + "]"

    def encode(self) -> tuple[bytes, int]:
        """``(full JSON, cut)`` where ``full[:cut] + b"}"`` is the element without Rels."""
        head = self.head().encode()
        return head + b',"Rels":' + self.rels_json().encode() + b"}", len(head)

    def to_json(self) -> dict[str, Any]:
        """The element as DVID emits it (a dict with fields in order)."""
        return {"Pos": list(self.pos), "Kind": self.kind, "Tags": self.tags,
                "Prop": None if self.prop is None else dict(sorted(self.prop.items())),
                "Rels": None if self.rels is None else
                [{"Rel": r, "To": list(t)} for r, t in self.rels]}


def parse_element(d: Any, where: str = "element") -> Element:
    """Validate one posted element (a parsed JSON object).

    Missing ``Kind`` is ``"Unknown"`` and a relationship without ``Rel`` is
    ``"UnknownRelationship"`` (Go's zero values); unknown fields are ignored. ``Pos`` is
    required. Raises :class:`BadRequest` for anything else malformed: unknown ``Kind`` or
    ``Rel``, non-string tags, non-string ``Prop`` values, bad coordinates.
    """
    if not isinstance(d, dict):
        raise BadRequest(f"{where} is not a JSON object: {d!r}")
    if "Pos" not in d:
        raise BadRequest(f"{where} has no Pos")
    pos = _point(d["Pos"], f"{where} Pos")
    kind = d.get("Kind", "Unknown")
    if kind is None:
        kind = "Unknown"
    if not isinstance(kind, str) or kind not in KINDS:
        raise BadRequest(f"Unknown element type in JSON: {kind!r} ({where} at {list(pos)})")
    tags = d.get("Tags")
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise BadRequest(f"{where} Tags must be an array of strings, got {tags!r}")
        if any("\x00" in t for t in tags):
            raise BadRequest(f"{where} has a tag containing a NUL character")
    prop = d.get("Prop")
    if prop is not None:
        if not isinstance(prop, dict):
            raise BadRequest(f"{where} Prop must be an object of strings, got {prop!r}")
        for k, v in prop.items():
            if not isinstance(v, str):
                raise BadRequest(f"{where} Prop value for {k!r} must be a string, got {v!r}")
    rels_in = d.get("Rels")
    rels: list[tuple[str, tuple[int, int, int]]] | None = None
    if rels_in is not None:
        if not isinstance(rels_in, list):
            raise BadRequest(f"{where} Rels must be an array, got {rels_in!r}")
        rels = []
        for r in rels_in:
            if not isinstance(r, dict):
                raise BadRequest(f"{where} relationship is not an object: {r!r}")
            rel = r.get("Rel", "UnknownRelationship")
            if rel is None:
                rel = "UnknownRelationship"
            if not isinstance(rel, str) or rel not in _RELSET:
                raise BadRequest(f"Unknown relationship type in JSON: {rel!r} "
                                 f"({where} at {list(pos)})")
            if "To" not in r:
                raise BadRequest(f"{where} relationship has no To: {r!r}")
            rels.append((rel, _point(r["To"], f"{where} relationship To")))
    return Element(pos, kind, list(tags) if tags is not None else None,
                   dict(prop) if prop is not None else None, rels)


def parse_elements(body: Any) -> list[Element]:
    """Validate a posted array of elements; ``null`` is an empty list. When several
    elements share a position the last one wins (DVID would store duplicates)."""
    if body is None:
        return []
    if not isinstance(body, list):
        raise BadRequest("expected a JSON array of elements")
    elems = [parse_element(d, f"element {i}") for i, d in enumerate(body)]
    seen: dict[tuple[int, int, int], int] = {}
    for i, e in enumerate(elems):
        seen[e.pos] = i
    if len(seen) != len(elems):
        elems = [elems[i] for i in sorted(seen.values())]
    return elems


def element_from_json(raw: bytes) -> Element:
    """Parse one stored element JSON (trusted input)."""
    return parse_element(json.loads(raw), "stored element")


# --------------------------------------------------------------------------------------
# Packed lists
# --------------------------------------------------------------------------------------

_HDR = struct.Struct("<BI")
_FMT = 1


def pos_keys(pos: np.ndarray) -> np.ndarray:
    """One comparable scalar per (N, 3) int32 position (a 12-byte void view)."""
    return np.ascontiguousarray(pos, dtype=np.int32).view(np.dtype((np.void, 12))).ravel()


@dataclass
class ElemList:
    """A list of elements: ``pos`` (N, 3) int32, ``kind`` (N,) uint8, each element's JSON
    (``blob[off[i]:off[i+1]]``) and ``cut`` (N,) (see module docstring)."""

    pos: np.ndarray
    kind: np.ndarray
    off: np.ndarray
    cut: np.ndarray
    blob: bytes

    @classmethod
    def empty(cls) -> ElemList:
        """A list without elements."""
        return cls(np.zeros((0, 3), np.int32), np.zeros(0, np.uint8), np.zeros(1, np.int64),
                   np.zeros(0, np.int64), b"")

    @classmethod
    def build(cls, pos: Sequence[Sequence[int]] | np.ndarray, kinds: Sequence[int],
              jsons: Sequence[bytes], cuts: Sequence[int]) -> ElemList:
        """A list from parallel sequences."""
        n = len(jsons)
        lens = np.fromiter((len(j) for j in jsons), dtype=np.int64, count=n)
        off = np.zeros(n + 1, np.int64)
        np.cumsum(lens, out=off[1:])
        return cls(np.asarray(pos, dtype=np.int32).reshape(n, 3),
                   np.asarray(kinds, dtype=np.uint8).reshape(n),
                   off, np.asarray(cuts, dtype=np.int64).reshape(n), b"".join(jsons))

    @classmethod
    def of(cls, elems: Iterable[Element], nr: bool = False) -> ElemList:
        """A list of elements (with Rels, or their NR form when ``nr``)."""
        pos, kinds, jsons, cuts = [], [], [], []
        for e in elems:
            full, cut = e.encode()
            if nr:
                full = full[:cut] + b"}"
            pos.append(e.pos)
            kinds.append(e.kind_code)
            jsons.append(full)
            cuts.append(cut)
        return cls.build(pos, kinds, jsons, cuts)

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    # ----- storage ------------------------------------------------------------------

    def encode(self) -> bytes:
        """Stored bytes: format byte, count, arrays (little-endian), then the JSON blob."""
        n = len(self)
        return b"".join((_HDR.pack(_FMT, n), self.pos.astype("<i4").tobytes(),
                         self.kind.tobytes(), np.diff(self.off).astype("<u4").tobytes(),
                         self.cut.astype("<u4").tobytes(), self.blob))

    @classmethod
    def decode(cls, raw: bytes) -> ElemList:
        """Inverse of :meth:`encode` (ValueError when corrupt)."""
        fmt, n = _HDR.unpack_from(raw, 0)
        if fmt != _FMT:
            raise ValueError(f"unknown element list format {fmt}")
        o = _HDR.size
        pos = np.frombuffer(raw, "<i4", 3 * n, o).reshape(n, 3)
        o += 12 * n
        kind = np.frombuffer(raw, np.uint8, n, o)
        o += n
        lens = np.frombuffer(raw, "<u4", n, o).astype(np.int64)
        o += 4 * n
        cut = np.frombuffer(raw, "<u4", n, o).astype(np.int64)
        o += 4 * n
        off = np.zeros(n + 1, np.int64)
        np.cumsum(lens, out=off[1:])
        blob = raw[o:]
        if len(blob) != off[-1]:
            raise ValueError("element list blob has the wrong length")
        return cls(pos, kind, off, cut, blob)

    # ----- access -------------------------------------------------------------------

    def json_at(self, i: int) -> bytes:
        """Element *i* as stored."""
        return self.blob[self.off[i]:self.off[i + 1]]

    def nr_at(self, i: int) -> bytes:
        """Element *i* without relationships."""
        o = int(self.off[i])
        return self.blob[o:o + int(self.cut[i])] + b"}"

    def iter_json(self, idx: Iterable[int] | None = None, nr: bool = False) -> Iterable[bytes]:
        """JSON of the elements at ``idx`` (all by default)."""
        rng = range(len(self)) if idx is None else idx
        f = self.nr_at if nr else self.json_at
        return (f(i) for i in rng)

    def json_array(self, nr: bool = False) -> bytes:
        """The whole list as a JSON array."""
        return b"[" + b",".join(self.iter_json(nr=nr)) + b"]"

    def element(self, i: int) -> Element:
        """Element *i* parsed."""
        return element_from_json(self.json_at(i))

    def find(self, pos: Sequence[int]) -> int:
        """Index of the element at ``pos`` or -1."""
        if not len(self):
            return -1
        hit = np.flatnonzero((self.pos == np.asarray(pos, np.int32)).all(axis=1))
        return int(hit[0]) if hit.size else -1

    def mask_of(self, positions: np.ndarray) -> np.ndarray:
        """Bool (N,): which elements sit at one of ``positions`` ((M, 3))."""
        if not len(self) or not len(positions):
            return np.zeros(len(self), bool)
        return np.isin(pos_keys(self.pos), pos_keys(np.asarray(positions).reshape(-1, 3)))

    # ----- edits (all return new lists) -----------------------------------------------

    def select(self, mask_or_idx: np.ndarray) -> ElemList:
        """The elements selected by a bool mask or an index array (in that order)."""
        idx = np.asarray(mask_or_idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        if idx.size == len(self) and (idx == np.arange(len(self))).all():
            return self
        starts, ends = self.off[idx], self.off[idx + 1]
        blob = b"".join(self.blob[s:e] for s, e in zip(starts.tolist(), ends.tolist(),
                                                        strict=True))
        off = np.zeros(idx.size + 1, np.int64)
        np.cumsum(ends - starts, out=off[1:])
        return ElemList(self.pos[idx], self.kind[idx], off, self.cut[idx], blob)

    def without(self, positions: np.ndarray) -> ElemList:
        """The list minus elements at ``positions``."""
        m = self.mask_of(positions)
        return self.select(~m) if m.any() else self

    @staticmethod
    def concat(lists: Sequence[ElemList]) -> ElemList:
        """Lists joined in order (no de-duplication)."""
        lists = [x for x in lists if len(x)]
        if not lists:
            return ElemList.empty()
        if len(lists) == 1:
            return lists[0]
        offs = []
        base = 0
        for x in lists:
            offs.append(x.off[:-1] + base)
            base += int(x.off[-1])
        off = np.concatenate([*offs, np.array([base], np.int64)])
        return ElemList(np.concatenate([x.pos for x in lists]),
                        np.concatenate([x.kind for x in lists]), off,
                        np.concatenate([x.cut for x in lists]),
                        b"".join(x.blob for x in lists))

    def upsert(self, other: ElemList) -> ElemList:
        """This list with ``other``'s elements replacing those at the same positions."""
        return ElemList.concat([self.without(other.pos), other])


__all__ = ["KINDS", "KIND_NAMES", "RELS", "ElemList", "Element", "element_from_json",
           "parse_element", "parse_elements", "pos_keys"]
