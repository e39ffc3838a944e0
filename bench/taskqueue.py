"""The queue: create-to-claimed latency and sustained tasks per second, with an instant engine.

    python bench/taskqueue.py                        # SQLite and PostgreSQL, 1 and 4 workers
    python bench/taskqueue.py --backend sqlite --workers 4 --tasks 400
    python bench/taskqueue.py --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

(Not ``bench/queue.py``: scripts run with their directory first on ``sys.path``, so a
``queue.py`` there would hide the standard library's ``queue`` from every script in ``bench/``.)

Each worker is its own process (what `reelgate worker` runs: the real ``Worker`` with its
claim loop, heartbeats, storage and wake-ups), serving the sandbox's models through an engine
that returns a 1-byte file at once, so only the queue is measured. Tasks are created through
the real ``Store.create_task`` by this process (another connection, as the API would), and
timed on the store's own columns (``created_at``, ``started_at``, ``updated_at``; ms):

- latency: ``--probes`` tasks created one at a time, each after ``--idle`` seconds with every
  worker idle (waiting to be woken), from the create's commit (when the API would answer) to
  the claim (``started_at``, the store's wall clock in ms) p50/p99;
- throughput: ``--tasks`` tasks created back to back; tasks per second from the first create
  to the last finish.

PostgreSQL runs on a fresh database of the server at ``--postgres-url`` (default
``REELGATE_TEST_POSTGRES_URL``), dropped afterwards; it is skipped when unreachable.
Ends with ``RESULT name=value ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from pgscratch import create_database, drop_database

from reelgate.domain.models import Catalog
from reelgate.domain.tasks import TaskStatus
from reelgate.engines.base import Cancelled, Job, Output, Progress, VideoFile
from reelgate.engines.sandbox.catalog import sandbox_models
from reelgate.settings import Settings
from reelgate.store import NewTask, Store

DEFAULT_POSTGRES = os.environ.get(
    "REELGATE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MODEL = "kling-v1"


class InstantEngine:
    """Serves the sandbox's models; every clip is a 1-byte file written at once."""

    name = "sandbox"

    def models(self) -> list[object]:
        return list(sandbox_models(()))

    async def generate(self, job: Job, progress: Progress, cancelled: Cancelled) -> Output:
        job.workdir.mkdir(parents=True, exist_ok=True)
        path = job.workdir / "video.mp4"
        path.write_bytes(b"\0")
        return Output(videos=[VideoFile(path=path, duration=5.0)])

    async def aclose(self) -> None:
        return None


async def run_worker(url: str, data_dir: Path) -> None:
    """One worker process; prints ``ready`` once claiming, stops on stdin's end."""
    from reelgate.cli.runtime import storage_from
    from reelgate.worker.worker import Worker

    settings = Settings(data_dir=data_dir, database_url=url, workers=1)
    store = await Store.open(url, migrate=False)
    engine = InstantEngine()
    catalog = Catalog(sandbox_models(()))
    worker = Worker(store, {"sandbox": engine}, catalog, storage_from(settings), settings, slots=1)
    await worker.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # the parent closes our stdin to stop us
    await worker.stop()
    await store.close()


async def wait_finished(store: Store, task_ids: list[str]) -> None:
    pending = list(task_ids)
    while pending:
        record = await store.get_task_by_id(pending[-1])
        if record is not None and record.status in (TaskStatus.SUCCEED, TaskStatus.FAILED):
            pending.pop()
        else:
            await asyncio.sleep(0.01)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(url: str, workers: int, args: argparse.Namespace) -> dict[str, float]:
    store = await Store.open(url)
    data_dir = Path(tempfile.mkdtemp(prefix="reelgate-queue-"))
    command = [sys.executable, __file__, "--worker", url, "--data-dir", str(data_dir)]
    children = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220 (started once, before timing)
        for _ in range(workers)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            line = await asyncio.to_thread(child.stdout.readline)
            if line.strip() != "ready":
                raise RuntimeError(f"a worker did not start (exit code {child.wait()})")
        account = (await store.create_account("bench")).account_id

        def new() -> NewTask:
            return NewTask(account, MODEL, {"prompt": "bench"}, Decimal(0))

        latencies = []
        for _ in range(args.probes):
            await asyncio.sleep(args.idle)  # every worker idle, its poll backed off
            task = await store.create_task(new())
            acknowledged_ms = time.time() * 1000  # committed: what the API answers 200 after
            await wait_finished(store, [task.task_id])
            done = await store.get_task_by_id(task.task_id)
            assert done is not None and done.started_at is not None
            latencies.append(max(done.started_at - acknowledged_ms, 0.0))
        ids = [(await store.create_task(new())).task_id for _ in range(args.tasks)]
        await wait_finished(store, ids)
        records = [await store.get_task_by_id(task_id) for task_id in ids]
        first = min(r.created_at for r in records if r is not None)
        last = max(r.updated_at for r in records if r is not None)
        failed = sum(1 for r in records if r is None or r.status is not TaskStatus.SUCCEED)
        return {
            "p50_ms": statistics.median(latencies),
            "p99_ms": percentile(latencies, 0.99),
            "tasks_per_s": len(ids) / max((last - first) / 1000, 1e-3),
            "failed": float(failed),
        }
    finally:
        for child in children:
            with contextlib.suppress(OSError):
                assert child.stdin is not None
                child.stdin.close()
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        await store.close()


async def main_async(args: argparse.Namespace) -> None:
    print(f"cores={os.cpu_count()} load={os.getloadavg()[0]:.1f} python={sys.version.split()[0]}")
    print(f"probes={args.probes} idle={args.idle}s tasks={args.tasks}\n")
    print("| store | workers | create-to-claimed p50 ms | p99 ms | tasks/s | failed |")
    print("|---|---|---|---|---|---|")
    results: dict[str, float] = {}
    for backend in args.backend or ["sqlite", "postgres"]:
        for workers in args.workers or [1, 4]:
            admin = args.postgres_url
            if backend == "sqlite":
                url: str | None = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/reelgate.db"
            else:
                url = await create_database(admin)
            if url is None:
                continue
            try:
                r = await measure(url, workers, args)
            finally:
                if backend == "postgres":
                    await drop_database(admin, url)
            print(
                f"| {backend} | {workers} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} |"
                f" {r['tasks_per_s']:.0f} | {r['failed']:.0f} |",
                flush=True,
            )
            for key, value in r.items():
                results[f"{backend}_{workers}w_{key}"] = value
    print("RESULT " + " ".join(f"{k}={v:.1f}" for k, v in results.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--workers", action="append", type=int, help="worker processes")
    parser.add_argument("--probes", type=int, default=20, help="tasks timed one at a time")
    parser.add_argument("--idle", type=float, default=0.3, help="seconds idle before each probe")
    parser.add_argument("--tasks", type=int, default=100, help="tasks for the throughput run")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(run_worker(args.worker, args.data_dir))
        return
    started = time.perf_counter()
    asyncio.run(main_async(args))
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
