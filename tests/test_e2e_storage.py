"""Past one machine: an API (`reelgate serve --no-worker`) and separate `reelgate worker`
processes, each with its own data directory and no shared disk, on the real PostgreSQL and a
real S3-protocol server (moto in server mode) on loopback."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from reelgate.callbacks.receiver import Receiver
from reelgate.settings import Settings
from reelgate.storage import open_storage

from .helpers import assert_ok
from .s3_support import S3Server, s3_server  # noqa: F401 (fixture)
from .server import REELGATE, reelgate_env, run_cli, running_server, stop

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CREATE = "/v1/videos/text2video"


@contextmanager
def worker(data_dir: Path, log: Path, env: Mapping[str, str], *args: str) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*REELGATE, "worker", "--data-dir", str(data_dir), "--workers", "2", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=reelgate_env(env),
        )
    try:
        yield
    finally:
        assert stop(proc) == 0, log.read_text()


async def wait_for_status(
    client: httpx.AsyncClient, ids: list[str], status: str, within_s: float = 120
) -> list[dict[str, Any]]:
    async def poll() -> list[dict[str, Any]]:
        while True:
            tasks = [assert_ok(await client.get(f"{CREATE}/{i}")) for i in ids]
            if all(t["task_status"] == status for t in tasks):
                return tasks
            await asyncio.sleep(0.3)

    return await asyncio.wait_for(poll(), within_s)


async def attempts(postgres_url: str) -> dict[str, tuple[str, int]]:
    conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch("SELECT task_id, status, attempts FROM tasks")
        return {r["task_id"]: (r["status"], r["attempts"]) for r in rows}
    finally:
        await conn.close()


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_api_and_workers_on_separate_disks_share_postgres_and_s3(
    tmp_path: Path,
    postgres_url: str,
    s3_server: S3Server,  # noqa: F811
) -> None:
    bucket = s3_server.create_bucket()
    env = {
        "REELGATE_DATABASE_URL": postgres_url,
        "REELGATE_STORAGE_URL": f"s3://{bucket}/reelgate",
        **s3_server.env(),
    }
    storage = open_storage(Settings.from_env(env, data_dir=tmp_path / "unused"))
    api_dir, a_dir, b_dir = tmp_path / "api", tmp_path / "worker-a", tmp_path / "worker-b"
    logs = tmp_path / "logs"
    logs.mkdir()
    run_cli("db", "upgrade", env=env)
    async with Receiver() as rx:
        with running_server(api_dir, "--no-worker", env=env) as server:
            headers = {"Authorization": f"Bearer {server.credentials()['api_key']}"}
            async with httpx.AsyncClient(
                base_url=server.base_url, headers=headers, timeout=30
            ) as client:

                async def create(model: str, **extra: str) -> str:
                    body = {"prompt": f"a lighthouse for {model}", "model_name": model, **extra}
                    return str(assert_ok(await client.post(CREATE, json=body))["task_id"])

                served = [await create("kling-v1") for _ in range(3)]
                served.append(await create("kling-v2-6", callback_url=rx.url("/hook")))
                other = [await create("kling-v3") for _ in range(2)]

                # Worker A serves two models only: the kling-v3 tasks are never claimed.
                with worker(a_dir, logs / "a.log", env, "--serve-models", "kling-v1,kling-v2-6"):
                    done = await wait_for_status(client, served, "succeed")
                    states = await attempts(postgres_url)
                    assert [states[i] for i in other] == [("submitted", 0)] * 2
                    for task in await wait_for_status(client, other, "submitted", 5):
                        assert task["task_result"] == {}
                # Worker B, on another disk, serves the rest.
                with worker(b_dir, logs / "b.log", env, "--serve-models", "kling-v3"):
                    done += await wait_for_status(client, other, "succeed")
                callback = (await asyncio.wait_for(rx.wait_for_count(3, "/hook"), 60))[-1]

    states = await attempts(postgres_url)
    assert {states[t["task_id"]] for t in done} == {("succeed", 1)}
    async with httpx.AsyncClient(timeout=30) as download:
        for task in done:
            video = task["task_result"]["videos"][0]
            key = f"videos/{task['task_id']}/0.mp4"
            stored = b"".join(storage.read(key))  # the MP4 is in the bucket
            assert stored[4:8] == b"ftyp"
            # the API's link is a presigned GET on the bucket, and downloads the same bytes
            assert video["url"].startswith(f"{s3_server.endpoint}/{bucket}/reelgate/{key}?")
            assert (await download.get(video["url"])).content == stored
        body = callback.payload
        assert body["task_status"] == "succeed" and body["task_id"] == served[3]
        url = body["task_result"]["videos"][0]["url"]
        assert (await download.get(url)).content == b"".join(
            storage.read(f"videos/{served[3]}/0.mp4")
        )
    # No shared disk: results and link keys live in no data directory; workers keep scratch
    for data_dir in (api_dir, a_dir, b_dir):
        names = files_under(data_dir)
        assert not [n for n in names if n.endswith((".mp4", ".jpg")) or "signing.key" in n]
    # the API keeps its first-start keys and the sandbox admin key (it serves sandbox models)
    api_files = {n for n in files_under(api_dir) if not n.startswith("serve-")}
    assert api_files == {"credentials.json", "sandbox-admin.key"}
    for data_dir in (a_dir, b_dir):
        assert {p.name for p in data_dir.iterdir()} <= {"work"}


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (
            ["worker", "--serve-models", "kling-v1,nope"],
            {},
            "error: REELGATE_SERVE_MODELS: 'nope' is not a model of the catalogue (models:"
            " kling-v1, kling-v1-6, kling-v2-master, kling-v2-1-master, kling-v2-5-turbo,"
            " kling-v2-6, kling-v3)",
        ),
        (
            ["serve", "--storage-url", "gs://bucket"],
            {},
            "error: REELGATE_STORAGE_URL: the scheme gs:// is not supported (s3:// or a folder)",
        ),
        (
            ["worker", "--storage-url", "s3://bucket/p"],
            {"REELGATE_URL_TTL": "900000"},
            "error: REELGATE_URL_TTL: 900000 s is not a lifetime a presigned S3 link can have"
            " (1 to 604800 s)",
        ),
    ],
)
def test_settings_that_cannot_work_stop_the_process_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], line: str
) -> None:
    out = subprocess.run(
        [*REELGATE, *args, "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env=reelgate_env(env),
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "data").exists()  # nothing was created before the check


def test_serve_on_postgres_requires_the_signing_key(tmp_path: Path) -> None:
    env = {"REELGATE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    out = subprocess.run(
        [*REELGATE, "serve", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=reelgate_env(env),
        timeout=60,
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: REELGATE_SIGNING_KEY must be set when the store is not SQLite"
    )
    assert not (tmp_path / "signing.key").exists()
