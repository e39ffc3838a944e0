"""``bench/gpu_generate.py --tiny`` runs on CPU and prints one row per variant."""

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


def test_tiny_benchmark_measures_stock_engine_and_speed_options(tmp_path: Path):
    out = tmp_path / "rows.json"
    command = [sys.executable, str(ROOT / "bench" / "gpu_generate.py"), "--tiny", "--runs", "1"]
    command += ["--warmup", "0", "--skip", "compile", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {row["name"]: row for row in json.loads(out.read_text())}
    assert list(rows) == ["stock", "engine", "cache first_block", "fp8 storage", "engine e2e"]
    for name in ("stock", "engine", "cache first_block", "fp8 storage"):
        phases = rows[name]
        assert all(phases[p] >= 0 for p in ("text_encode", "denoise", "decode", "encode"))
        assert phases["total"] >= phases["denoise"] > 0
    assert "| stock |" in done.stdout and "| engine e2e |" in done.stdout
