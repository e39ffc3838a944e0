"""Scale-out shape on one machine: an API and two workers sharing a PostgreSQL store."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from .helpers import assert_ok
from .server import REELGATE, reelgate_env, run_cli, running_server, stop

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CREATE = "/v1/videos/text2video"


def test_api_and_two_workers_on_postgres_finish_every_task_once(
    tmp_path: Path, postgres_url: str
) -> None:
    data = tmp_path / "data"
    env = {"REELGATE_DATABASE_URL": postgres_url, "REELGATE_SIGNING_KEY": "shared-by-replicas"}
    run_cli("db", "upgrade", env=env)
    workers = []
    with running_server(data, "--no-worker", env=env) as server:
        headers = {"Authorization": f"Bearer {server.credentials()['api_key']}"}
        for i in range(2):
            with (data / f"worker-{i}.log").open("wb") as log:
                workers.append(
                    subprocess.Popen(
                        [*REELGATE, "worker", "--data-dir", str(data), "--workers", "2"],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=reelgate_env(env),
                    )
                )
        try:
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
                ids = [
                    assert_ok(
                        client.post(CREATE, json={"prompt": f"harbour {i} [[sandbox:slow=1]]"})
                    )["task_id"]
                    for i in range(8)
                ]
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    tasks = assert_ok(client.get(f"{CREATE}?pageSize=50"))
                    if all(t["task_status"] == "succeed" for t in tasks):
                        break
                    time.sleep(0.3)
                assert sorted(t["task_id"] for t in tasks) == sorted(ids)
                assert all(t["task_status"] == "succeed" for t in tasks), tasks
        finally:
            for proc in workers:
                assert stop(proc) == 0
    logs = [(data / f"worker-{i}.log").read_text() for i in range(2)]
    assert all("worker" in log for log in logs)

    async def events() -> list[tuple[str, str, int]]:
        conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            rows = await conn.fetch(
                "SELECT e.task_id, e.status, t.attempts FROM task_events e"
                " JOIN tasks t USING (task_id) ORDER BY e.id"
            )
            return [(r["task_id"], r["status"], r["attempts"]) for r in rows]
        finally:
            await conn.close()

    rows = asyncio.run(events())
    for task_id in ids:
        assert [s for t, s, _ in rows if t == task_id] == ["submitted", "processing", "succeed"]
        assert {a for t, _, a in rows if t == task_id} == {1}
