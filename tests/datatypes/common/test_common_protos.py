"""Tests for datatypes.protos: pinned wire bytes, round trips, .proto/descriptor agreement."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

import datatypes.protos as protos
from datatypes.protos import (
    POOL,
    KeyRange,
    Keys,
    KeyValue,
    KeyValues,
    LabelIndex,
    LabelIndices,
    MappingOp,
    MappingOps,
    SVCount,
)

SETTINGS = settings(max_examples=60, deadline=None)
PROTO_DIR = Path(protos.__file__).parent
u64 = st.integers(0, 2**64 - 1)
u32 = st.integers(0, 2**32 - 1)


def test_exports():
    assert set(protos.__all__) == {
        "POOL",
        "parse",
        "keyvalue_head",
        "KeyValue",
        "KeyRange",
        "Keys",
        "KeyValues",
        "SVCount",
        "LabelIndex",
        "LabelIndices",
        "MappingOp",
        "MappingOps",
    }
    for name in protos.__all__:
        assert getattr(protos, name) is not None
    assert KeyValue.DESCRIPTOR.full_name == "proto.KeyValue"
    assert LabelIndex.DESCRIPTOR.file.package == "proto"


# Hand-computed encodings: tag byte = (field_number << 3) | wire_type.
@pytest.mark.parametrize(
    ("msg", "hexbytes"),
    [
        # 0a=f1/LEN "a"; 12=f2/LEN 01 02
        (lambda: KeyValue(key="a", value=b"\x01\x02"), "0a016112020102"),
        # 10=f2/varint 1; 18=f3/varint 300 (ac 02)
        (lambda: KeyRange(key="k", byte_start=1, byte_end=300), "0a016b100118ac02"),
        # repeated string f1 twice, then f2 = embedded KeyRange{key:"c"}
        (
            lambda: Keys(keys=["a", "b"], key_ranges=[KeyRange(key="c")]),
            "0a01610a016212030a0163",
        ),
        (lambda: KeyValues(kvs=[KeyValue(key="x")]), "0a030a0178"),
        # proto3 packed repeated uint64: 1a=f3/LEN, 2 bytes 03 04
        (lambda: MappingOp(mutid=1, mapped=2, original=[3, 4]), "080110021a020304"),
        (lambda: MappingOps(mappings=[MappingOp(mutid=5)]), "0a020805"),
        # map<uint64,uint32> entry {key:5, value:7}; then surface_mutid=9
        (lambda: _svcount({5: 7}, 9), "0a04080510071009"),
        # map<uint64,SVCount> entry {key:2, value:SVCount{counts{3:4}}}; label=1; time="t"
        (lambda: _labelindex(), "0a0a080212060a04080310041001220174"),
        (lambda: LabelIndex(last_mutid=2**64 - 1), "18ffffffffffffffffff01"),
        (lambda: LabelIndex(last_mod_user="u", last_mod_app="a"), "2a0175320161"),
        (lambda: LabelIndices(indices=[LabelIndex(label=3)]), "0a021003"),
    ],
)
def test_wire_bytes_pinned(msg, hexbytes):
    m = msg()
    assert m.SerializeToString().hex() == hexbytes
    assert type(m).FromString(bytes.fromhex(hexbytes)) == m


def _svcount(counts, surface):
    s = SVCount(surface_mutid=surface)
    for k, v in counts.items():
        s.counts[k] = v
    return s


def _labelindex():
    li = LabelIndex(label=1, last_mod_time="t")
    li.blocks[2].counts[3] = 4
    return li


def test_parse_unpacked_repeated():
    # Parsers must accept unpacked (wire type 0) repeated scalars too.
    m = MappingOp.FromString(bytes.fromhex("08011002180318041a020506"))
    assert list(m.original) == [3, 4, 5, 6]


@SETTINGS
@given(st.lists(st.tuples(st.text(max_size=10), st.binary(max_size=20)), max_size=6))
def test_keyvalues_roundtrip(pairs):
    kvs = KeyValues(kvs=[KeyValue(key=k, value=v) for k, v in pairs])
    back = KeyValues.FromString(kvs.SerializeToString())
    assert [(kv.key, kv.value) for kv in back.kvs] == pairs


@SETTINGS
@given(
    st.lists(st.text(max_size=8), max_size=5),
    st.lists(st.tuples(st.text(max_size=8), u64, u64), max_size=5),
)
def test_keys_roundtrip(keys, ranges):
    msg = Keys(
        keys=keys, key_ranges=[KeyRange(key=k, byte_start=a, byte_end=b) for k, a, b in ranges]
    )
    back = Keys.FromString(msg.SerializeToString())
    assert list(back.keys) == keys
    assert [(r.key, r.byte_start, r.byte_end) for r in back.key_ranges] == ranges


@SETTINGS
@given(
    st.dictionaries(u64, st.dictionaries(u64, u32, max_size=4), max_size=4),
    u64,
    u64,
    st.text(max_size=10),
    st.text(max_size=10),
    st.text(max_size=10),
    u64,
)
def test_labelindex_roundtrip(blocks, label, mutid, t, user, app, surface):
    li = LabelIndex(label=label, last_mutid=mutid, last_mod_time=t, last_mod_user=user)
    li.last_mod_app = app
    for bkey, counts in blocks.items():
        li.blocks[bkey].surface_mutid = surface
        for sv, n in counts.items():
            li.blocks[bkey].counts[sv] = n
    data = li.SerializeToString(deterministic=True)
    back = LabelIndex.FromString(data)
    assert back == li
    assert {k: dict(v.counts) for k, v in back.blocks.items()} == blocks
    wrapped = LabelIndices(indices=[li, LabelIndex(label=1)])
    assert LabelIndices.FromString(wrapped.SerializeToString()) == wrapped
    assert pickle.loads(pickle.dumps(li)) == li


@SETTINGS
@given(st.lists(st.tuples(u64, u64, st.lists(u64, max_size=5)), max_size=5))
def test_mappingops_roundtrip(ops):
    msg = MappingOps(mappings=[MappingOp(mutid=a, mapped=b, original=c) for a, b, c in ops])
    back = MappingOps.FromString(msg.SerializeToString())
    assert [(m.mutid, m.mapped, list(m.original)) for m in back.mappings] == ops


def test_value_ranges_enforced():
    with pytest.raises((ValueError, TypeError)):
        MappingOp(mutid=-1)
    s = SVCount()
    with pytest.raises((ValueError, TypeError)):
        s.counts[1] = 2**32


# ---------------------------------------------------------------------------- .proto agreement

_MSG_RE = re.compile(r"message\s+(\w+)\s*\{(.*?)\n\}", re.S)
_FIELD_RE = re.compile(r"^\s*(repeated\s+)?(map<\s*\w+\s*,\s*\w+\s*>|\w+)\s+(\w+)\s*=\s*(\d+)\s*;")
_SCALAR_NAMES = {
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
}


def _parse_proto(path: Path) -> dict[str, dict[str, tuple[int, str, bool]]]:
    text = re.sub(r"//[^\n]*", "", path.read_text())
    assert re.search(r'syntax\s*=\s*"proto3"\s*;', text)
    assert re.search(r"package\s+proto\s*;", text)
    out: dict[str, dict[str, tuple[int, str, bool]]] = {}
    for name, body in _MSG_RE.findall(text):
        fields = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            m = _FIELD_RE.match(line)
            assert m, f"unparsed line in {path.name}: {line!r}"
            rep, ftype, fname, num = m.groups()
            fields[fname] = (int(num), re.sub(r"\s+", "", ftype), bool(rep))
        out[name] = fields
    return out


def _type_name(f) -> str:
    if f.type == descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE:
        return f.type_name.rsplit(".", 1)[-1]
    return _SCALAR_NAMES[f.type]


def _describe(msg) -> dict[str, tuple[int, str, bool]]:
    """Fields of a DescriptorProto as (number, type, repeated), maps as ``map<K,V>``."""
    entries = {n.name: n for n in msg.nested_type if n.options.map_entry}
    fields = {}
    for f in msg.field:
        entry = entries.get(f.type_name.rsplit(".", 1)[-1]) if f.type_name else None
        if entry is not None:
            k, v = entry.field
            assert (k.name, k.number, v.name, v.number) == ("key", 1, "value", 2)
            fields[f.name] = (f.number, f"map<{_type_name(k)},{_type_name(v)}>", False)
        else:
            repeated = f.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
            fields[f.name] = (f.number, _type_name(f), repeated)
    return fields


@pytest.mark.parametrize("filename", ["keyvalue.proto", "labelmap.proto"])
def test_proto_files_match_descriptors(filename):
    parsed = _parse_proto(PROTO_DIR / filename)
    fdp = descriptor_pb2.FileDescriptorProto()
    POOL.FindFileByName(filename).CopyToProto(fdp)
    assert fdp.package == "proto"
    assert fdp.syntax == "proto3"
    msgs = {m.name: m for m in fdp.message_type}
    assert set(parsed) == set(msgs)
    for name, fields in parsed.items():
        assert _describe(msgs[name]) == fields, name


def test_repeated_scalars_are_packed():
    assert MappingOp(original=[1]).SerializeToString() == bytes.fromhex("1a0101")


def test_parse_rejects_malformed_bodies_with_a_400():
    from dvidpy.errors import BadRequest

    kv = protos.KeyValues(kvs=[protos.KeyValue(key="a", value=b"x")])
    assert protos.parse(protos.KeyValues, kv.SerializeToString()) == kv
    with pytest.raises(BadRequest, match="malformed protobuf KeyValues"):
        protos.parse(protos.KeyValues, b"\xff\xff\xff")


@SETTINGS
@given(st.lists(st.tuples(st.text(max_size=40), st.binary(max_size=300)), max_size=6))
def test_keyvalue_head_equals_protobuf_serialization(pairs):
    """Streamed ``head + value`` pieces are byte-identical to protobuf's own KeyValues,
    empty keys and values (omitted by proto3) included."""
    mine = b"".join(protos.keyvalue_head(k.encode(), len(v)) + v for k, v in pairs)
    ref = KeyValues(kvs=[KeyValue(key=k, value=v) for k, v in pairs]).SerializeToString()
    assert mine == ref
    assert [(kv.key, kv.value) for kv in KeyValues.FromString(mine).kvs] == pairs


_EDGES = st.sampled_from([0, 1, 127, 128, 16383, 16384, 16385, 2**21 - 1, 2**21])


@SETTINGS
@given(st.one_of(_EDGES, st.integers(0, 20000)), st.one_of(_EDGES, st.integers(0, 70000)))
def test_keyvalue_head_at_varint_boundaries(key_len, value_len):
    """Key and value lengths around the one-, two- and three-byte varint boundaries (the
    head's table of small varints and its general path) give protobuf's own bytes."""
    key, value = "k" * key_len, b"v" * value_len
    mine = protos.keyvalue_head(key.encode(), value_len) + value
    assert mine == KeyValues(kvs=[KeyValue(key=key, value=value)]).SerializeToString()


@SETTINGS
@given(st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF), min_size=1,
               max_size=120), st.integers(0, 2**40),
       st.one_of(st.integers(0, 2**33), st.sampled_from([8**11 - 1, 8**11, 2**40])))
def test_tar_header_equals_tarfile(name, size, mtime):
    """keyvalue's hand-built tar headers are byte-identical to tarfile's (PAX format),
    for short ASCII names (built by hand) and everything else (delegated)."""
    import tarfile

    from datatypes.keyvalue import tar_header

    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = size, 0o755, mtime
    assert tar_header(name, size, mtime) == ti.tobuf(format=tarfile.PAX_FORMAT)
