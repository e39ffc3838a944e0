"""``bench/gpu_generate.py`` in its CI form: the random-weight mode with the tiny config, on CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

pytestmark = [pytest.mark.diffusers, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_random_weight_benchmark_reports_phases_per_step_and_floor(tmp_path: Path):
    out = tmp_path / "rows.json"
    command = [sys.executable, str(ROOT / "bench" / "gpu_generate.py")]
    command += ["--random-weights", "wan2.1-1.3b", "--tiny-config", "--device", "cpu"]
    command += ["--steps", "2", "--runs", "1", "--warmup", "0", "--skip", "compile"]
    command += ["--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {row["name"]: row for row in json.loads(out.read_text())}
    assert list(rows) == ["stock", "engine", "cache first_block", "fp8 storage (memory)"]
    for row in rows.values():
        assert all(row[p] >= 0 for p in ("text_encode", "decode", "encode"))
        assert row["steps"] == 2 and row["full_steps"] == 50  # wan2.1-1.3b's 50 steps
        assert row["step"] == pytest.approx(row["denoise"] / 2) and row["step"] > 0
        assert row["clip"] >= row["step"] * 50 and row["floor"] > 0
    assert "| stock | 50 |" in done.stdout
    assert "64x32, 9 frames, 50 steps (2 measured)" in done.stdout
