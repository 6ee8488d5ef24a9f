"""Which tensorstore driver a directory's metadata file names, including broken metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvidpy.ingest.sources import tensorstore_driver


@pytest.mark.parametrize(("name", "text", "want"), [
    (".zarray", "{}", "zarr"),
    ("zarr.json", '{"node_type": "array"}', "zarr3"),
    ("zarr.json", '{"node_type": "group"}', None),
    ("zarr.json", '["node_type"]', None),  # JSON, but not an object
    ("zarr.json", "{not json", None),
    ("attributes.json", '{"dimensions": [4, 4, 4]}', "n5"),
    ("attributes.json", "[1, 2]", None),
    ("info", '{"scales": []}', "neuroglancer_precomputed"),
    ("info", '"scales"', None),  # a JSON string holding the word is not an info file
    ("info", "\xff", None),
])
def test_driver_of_metadata(tmp_path: Path, name: str, text: str, want: str | None) -> None:
    (tmp_path / name).write_text(text)
    assert tensorstore_driver(str(tmp_path)) == want


def test_plain_directory_has_no_driver(tmp_path: Path) -> None:
    assert tensorstore_driver(str(tmp_path)) is None
