"""What FULL costs over NORMAL: task creates on the SQLite store, both settings side by side.

    python bench/sqlite_durability.py [--creates 300] [--concurrency 8] [--dir DIR]

Creates tasks through the real `Store.create_task` (one write transaction each: account lock,
quota and concurrency checks, the task row, its outbox event) on a fresh SQLite file in WAL
mode, once per `synchronous` setting, rounds interleaved so both see the same disk and load.
Prints per-create latency (one creator at a time) and throughput (`--concurrency` creators),
and the FULL/NORMAL ratio. A second table isolates the commit itself: one-row write
transactions through the plain `sqlite3` module with the same pragmas (no event loop, no
SQLAlchemy), which is where the extra fsync of FULL shows undiluted. `--dir` picks the
filesystem measured (default: a temporary dir; put it on the disk the data directory will live
on: fsync cost is the disk's).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from reelgate.store import NewTask, Store


async def _run(db: Path, mode: str, creates: int, concurrency: int) -> tuple[list[float], float]:
    store = await Store.open(f"sqlite+aiosqlite:///{db}?synchronous={mode}")
    try:
        async with store.engine.connect() as conn:  # the setting really reached the connection
            level = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
        assert level == {"NORMAL": 1, "FULL": 2}[mode], (mode, level)
        account = (await store.create_account("bench")).account_id

        def task(i: int) -> NewTask:
            return NewTask(account, "kling-v1", {"prompt": f"bench {i}"}, Decimal(1))

        latencies = []
        for i in range(creates):
            started = time.perf_counter()
            await store.create_task(task(i))
            latencies.append(time.perf_counter() - started)

        queue = list(range(creates))

        async def creator() -> None:
            while queue:
                await store.create_task(task(queue.pop()))

        started = time.perf_counter()
        await asyncio.gather(*(creator() for _ in range(concurrency)))
        return latencies, creates / (time.perf_counter() - started)
    finally:
        await store.close()


def _raw_commits(db: Path, mode: str, commits: int) -> list[float]:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={mode}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        latencies = []
        for _ in range(commits):
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (body) VALUES (?)", ("x" * 600,))
            conn.execute("COMMIT")
            latencies.append(time.perf_counter() - started)
        return latencies
    finally:
        conn.close()


def _percentiles(seconds: list[float]) -> tuple[float, float, float]:
    ms = sorted(x * 1000 for x in seconds)
    p50, p90, p99 = (ms[int(len(ms) * q) - 1] for q in (0.5, 0.9, 0.99))
    return p50, p90, p99


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=300, help="creates per round and mode")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="reelgate-sqlite-", dir=args.dir))
    modes = ("NORMAL", "FULL")
    lat: dict[str, list[float]] = {m: [] for m in modes}
    rate: dict[str, list[float]] = {m: [] for m in modes}
    raw: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for mode in modes if r % 2 == 0 else modes[::-1]:
            got, per_s = await _run(base / f"{mode}-{r}.db", mode, args.creates, args.concurrency)
            lat[mode] += got
            rate[mode].append(per_s)
            raw[mode] += _raw_commits(base / f"raw-{mode}-{r}.db", mode, args.creates)
    print(f"SQLite WAL, {args.rounds} rounds x {args.creates} creates per mode, dir {base}")
    print(f"{'synchronous':<12}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'creates/s':>11}")
    summary = {}
    for mode in modes:
        p50, p90, p99 = _percentiles(lat[mode])
        per_s = statistics.median(rate[mode])
        summary[mode] = (p50, per_s)
        conc = f"{per_s:.0f} ({args.concurrency} creators)"
        print(f"{mode:<12}{p50:>9.2f}{p90:>9.2f}{p99:>9.2f}   {conc}")
    (n50, nrate), (f50, frate) = summary["NORMAL"], summary["FULL"]
    print(f"FULL/NORMAL: p50 latency x{f50 / n50:.2f}, throughput x{frate / nrate:.2f}")
    print(f"\nplain sqlite3 commit of one row, {args.rounds} x {args.creates} per mode")
    print(f"{'synchronous':<12}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    for mode in modes:
        p50, p90, p99 = _percentiles(raw[mode])
        print(f"{mode:<12}{p50:>9.3f}{p90:>9.3f}{p99:>9.3f}")


if __name__ == "__main__":
    asyncio.run(main())
