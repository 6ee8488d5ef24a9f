"""Smoke test for the ingest section of benchmarks/labelmap.py (its output, not its timings)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.labelmap import run_ingest, segmentation_volume


def test_segmentation_volume_is_a_bent_grid() -> None:
    v = segmentation_volume((64, 64, 128), cell=16, seed=3)
    assert v.dtype == np.uint64 and v.shape == (64, 64, 128)
    np.testing.assert_array_equal(v, segmentation_volume((64, 64, 128), cell=16, seed=3))
    n = np.unique(v).size
    assert 4 * 4 * 8 * 0.5 < n < 4 * 4 * 8 * 3
    # walls are bent: some aligned 16³ cell holds more than one label
    cells = v.reshape(4, 16, 4, 16, 8, 16).transpose(0, 2, 4, 1, 3, 5).reshape(128, -1)
    assert max(np.unique(c).size for c in cells) > 1
    assert 0 not in v


def test_run_ingest_prints_both_comparisons(capsys: pytest.CaptureFixture[str]) -> None:
    run_ingest((64, 128, 128), repeats=1)
    out = capsys.readouterr().out
    assert "128x128x64 uint64" in out
    lines = [ln for ln in out.splitlines() if "(target >= 0.25x)" in ln]
    assert len(lines) == 2
    assert "memory engine vs tensorstore memory kvstore" in lines[0]
    assert "LevelDB vs tensorstore file kvstore" in lines[1]
