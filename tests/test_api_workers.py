"""`reelgate serve --api-workers N`: N API processes on one port, the worker refused beside them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .helpers import free_port
from .server import REELGATE, reelgate_env, running_server, stop


def children_of(pid: int) -> list[int]:
    """The API processes started by ``pid`` (not multiprocessing's resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) != pid or fields[0] == "Z":  # field 4: the parent; 3: the state
            continue
        if b"spawn_main" in (stat.parent / "cmdline").read_bytes():
            found.append(int(stat.parent.name))
    return found


def test_api_workers_with_the_in_process_worker_is_refused_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = str(free_port())
    out = subprocess.run(
        [*REELGATE, "serve", "--api-workers", "2", "--port", port, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env=reelgate_env(),
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.startswith("error: --api-workers 2 runs the API alone: add --no-worker")
    assert "reelgate worker" in out.stderr
    assert not data.exists()  # refused before anything was built


@pytest.mark.slow
def test_api_workers_serve_one_port_from_several_processes_and_sum_their_metrics(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path / "data", "--no-worker", "--api-workers", "2") as server:
        assert len(children_of(server.proc.pid)) == 2
        key = server.credentials()["api_key"]  # the first account, made once before the forks
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(20):  # a new connection each: the kernel spreads them over the processes
            r = httpx.get(f"{server.base_url}/v1/videos/text2video", headers=headers)
            assert r.status_code == 200 and r.json()["code"] == 0
        text = httpx.get(f"{server.base_url}/metrics").text
        served = sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "reelgate_http_requests_total"
            and sample.labels.get("route") == "/v1/videos/text2video"
        )
        assert served == 20  # every process's count, whichever answered /metrics
        children = children_of(server.proc.pid)
        assert stop(server.proc) == 0
        assert all(not Path(f"/proc/{pid}").exists() for pid in children)
