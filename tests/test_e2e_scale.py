"""Past one machine, at scale: two `reelgate serve --no-worker` replicas and three
`reelgate worker` processes, each with its own data directory and no shared disk, on the real
PostgreSQL and a real S3-protocol server (moto in server mode) on loopback. 200 tasks go in
through both replicas; one worker is SIGKILLed mid-run, one stopped with SIGTERM and another
started in its place. Every task ends `succeed` exactly once, its MP4 is in the bucket, and its
links download the same bytes through either replica."""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

import asyncpg
import httpx
import pytest

from reelgate.settings import Settings
from reelgate.storage import open_storage

from .helpers import assert_ok
from .s3_support import S3Server, s3_server  # noqa: F401 (fixture)
from .server import REELGATE, reelgate_env, run_cli, running_server, stop
from .test_e2e_storage import files_under

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CREATE = "/v1/videos/text2video"
TASKS = 200
SAMPLE = 20  # tasks whose links are downloaded through both replicas
# The cheapest sandbox request: kling-v3 takes 3 s clips (72 frames at 720p).
BODY = {"model_name": "kling-v3", "duration": "3", "mode": "std"}


def start_worker(data_dir: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True)
    with (data_dir.parent / f"{data_dir.name}.log").open("wb") as out:
        return subprocess.Popen(
            [*REELGATE, "worker", "--data-dir", str(data_dir), "--workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=reelgate_env(env),
        )


async def db_rows(conn: asyncpg.Connection, sql: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(sql))


async def wait_until_succeeded(
    conn: asyncpg.Connection, count: int, workers: list[subprocess.Popen[bytes]]
) -> None:
    """Poll the store until at least ``count`` tasks succeeded (no worker may die meanwhile)."""
    while True:
        done = await conn.fetchval("SELECT count(*) FROM tasks WHERE status = 'succeed'")
        if done >= count:
            return
        for proc in workers:
            assert proc.poll() is None, f"worker {proc.pid} exited with {proc.returncode}"
        await asyncio.sleep(0.5)


async def task_held_by(conn: asyncpg.Connection, proc: subprocess.Popen[bytes]) -> tuple[str, int]:
    """Wait until worker ``proc`` holds a lease on a running task; its id and attempts."""
    while True:
        row = await conn.fetchrow(
            "SELECT task_id, attempts FROM tasks"
            " WHERE status = 'processing' AND lease_owner LIKE $1",
            f"%:{proc.pid}:%",  # a worker's id is host:pid:nonce
        )
        if row is not None:
            return str(row["task_id"]), int(row["attempts"])
        assert proc.poll() is None, f"worker {proc.pid} exited with {proc.returncode}"
        await asyncio.sleep(0.05)


def assert_no_shared_disk(root: Path, killed: tuple[str, int]) -> None:
    """No result or link key in any data directory; workers keep scratch space only. The
    killed worker's scratch of the attempt it held may hold a finished render (killed before
    the upload; a worker started again on that directory sweeps it): nothing else may."""
    data_dirs = [p for p in root.iterdir() if p.is_dir() and p.name != "unused"]
    assert len(data_dirs) == 6  # two replicas, four workers
    left_by_kill = f"work/{killed[0]}-{killed[1]}/"
    for data_dir in data_dirs:
        names = [n for n in files_under(data_dir) if not n.startswith(left_by_kill)]
        assert not [n for n in names if n.endswith((".mp4", ".jpg")) or "signing.key" in n]
        if data_dir.name.startswith("worker-"):
            assert {p.name for p in data_dir.iterdir()} <= {"work"}


async def test_two_replicas_three_workers_200_tasks_survive_kill_and_term(
    tmp_path: Path,
    postgres_url: str,
    s3_server: S3Server,  # noqa: F811
) -> None:
    bucket = s3_server.create_bucket()
    env = {
        "REELGATE_DATABASE_URL": postgres_url,
        "REELGATE_STORAGE_URL": f"s3://{bucket}/reelgate",
        "REELGATE_LEASE_SECONDS": "3",  # the killed worker's task is reclaimed within seconds
        **s3_server.env(),
    }
    storage = open_storage(Settings.from_env(env, data_dir=tmp_path / "unused"))
    run_cli("db", "upgrade", env=env)
    conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with (
            running_server(tmp_path / "api-1", "--no-worker", env=env) as one,
            running_server(tmp_path / "api-2", "--no-worker", env=env) as two,
        ):
            # the first replica created the account on the empty store; its keys work on both
            headers = {"Authorization": f"Bearer {one.credentials()['api_key']}"}
            clients = [
                httpx.AsyncClient(base_url=s.base_url, headers=headers, timeout=60)
                for s in (one, two)
            ]
            try:
                workers = [start_worker(tmp_path / f"worker-{n}", env) for n in "abc"]

                async def create(n: int, client: httpx.AsyncClient) -> str:
                    body = {**BODY, "prompt": f"lighthouse number {n}"}
                    return str(assert_ok(await client.post(CREATE, json=body))["task_id"])

                # creates arrive on both replicas at once, a few at a time (as clients would)
                pairs = list(zip(range(TASKS), itertools.cycle(clients), strict=False))
                ids = []
                for start in range(0, TASKS, 8):
                    batch = pairs[start : start + 8]
                    ids += await asyncio.gather(*(create(n, c) for n, c in batch))
                assert len(set(ids)) == TASKS

                async def scenario() -> tuple[tuple[str, int], tuple[str, int]]:
                    await wait_until_succeeded(conn, TASKS // 5, workers)
                    killed = workers.pop(0)
                    lost = await task_held_by(conn, killed)  # mid-run: it holds this task
                    killed.send_signal(signal.SIGKILL)
                    assert killed.wait(30) == -signal.SIGKILL
                    await wait_until_succeeded(conn, TASKS * 2 // 5, workers)
                    termed = workers.pop(0)
                    finished = await task_held_by(conn, termed)
                    assert stop(termed, timeout=60) == 0  # finishes its task, then exits
                    workers.append(start_worker(tmp_path / "worker-d", env))
                    await wait_until_succeeded(conn, TASKS, workers)
                    return lost, finished

                # a guard against a hang, not a time bound
                lost, finished = await asyncio.wait_for(scenario(), 900)

                # Every task succeeded exactly once, per the store and its outbox.
                tasks = await db_rows(conn, "SELECT task_id, status, attempts FROM tasks")
                assert sorted(r["task_id"] for r in tasks) == sorted(ids)
                assert {r["status"] for r in tasks} == {"succeed"}
                attempts = {r["task_id"]: r["attempts"] for r in tasks}
                # the killed worker's lease ran out and another worker claimed its task again;
                # the stopped worker finished its own within the shutdown grace (no new claim)
                assert attempts[lost[0]] == lost[1] + 1
                assert attempts[finished[0]] == finished[1]
                events = await db_rows(
                    conn,
                    "SELECT task_id, count(*) AS n FROM task_events"
                    " WHERE status = 'succeed' GROUP BY task_id",
                )
                assert {r["task_id"]: r["n"] for r in events} == dict.fromkeys(ids, 1)

                # Each MP4 is in the bucket.
                stored: dict[str, bytes] = {}
                for task_id in ids:
                    data = b"".join(storage.read(f"videos/{task_id}/0.mp4"))
                    assert data[4:8] == b"ftyp", task_id
                    stored[task_id] = data

                # Links read through either replica download the same bytes.
                async with httpx.AsyncClient(timeout=60) as download:
                    for task_id in ids[:: TASKS // SAMPLE]:
                        for client in clients:
                            task = assert_ok(await client.get(f"{CREATE}/{task_id}"))
                            assert task["task_status"] == "succeed"
                            url = task["task_result"]["videos"][0]["url"]
                            got = await download.get(url)
                            assert got.status_code == 200, url
                            assert got.content == stored[task_id]
            finally:
                for client in clients:
                    await client.aclose()
                for proc in workers:
                    assert stop(proc, timeout=60) == 0
                workers = []
    finally:
        for proc in workers:
            proc.kill()
            proc.wait()
        await conn.close()

    assert_no_shared_disk(tmp_path, lost)
