"""Several API processes, one PROMETHEUS_MULTIPROC_DIR: any process's /metrics sums them all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

# One API process: serve ``count`` requests to /healthz in-process, then print its /metrics.
PROCESS = """
import asyncio, sys
from pathlib import Path
import httpx
from reelgate.api import create_app
from reelgate.settings import Settings

async def main(data: str, count: int) -> None:
    app = create_app(Settings(data_dir=Path(data)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(count):
                assert (await client.get("/healthz")).status_code == 200
            print((await client.get("/metrics")).text)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "reelgate_http_requests_total"
                and labels.get("route") == "/healthz"
                and labels.get("code") == "200"
            ):
                return sample.value
    return 0.0


@pytest.mark.slow
def test_each_process_metrics_include_every_other_process_counts(tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}

    def api_process(count: int) -> str:
        done = subprocess.run(
            [sys.executable, "-c", PROCESS, str(tmp_path / "data"), str(count)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert healthz_count(api_process(3)) == 3
    assert healthz_count(api_process(4)) == 7  # the first process's 3 and its own 4
    without = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    alone = subprocess.run(
        [sys.executable, "-c", PROCESS, str(tmp_path / "data"), "2"],
        env=without,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert alone.returncode == 0, alone.stderr
    assert healthz_count(alone.stdout) == 2  # without the directory: this process only
