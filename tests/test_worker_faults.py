"""Scratch directories of killed attempts are removed (issue 8, faults 3), never a live one."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

from reelgate.domain.tasks import TaskStatus
from reelgate.store import NewTask, Store
from reelgate.worker.maintenance import parse_workdir, remove_stale_workdirs

from .fault_support import FakeClock, running_rig


def _task(account_id: int) -> NewTask:
    return NewTask(account_id=account_id, model_name="kling-v1", params={}, units=Decimal(1))


async def test_only_dirs_of_current_leased_attempts_survive(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    store = Store(store.engine, clock)
    acct = (await store.create_account("a")).account_id

    async def claimed(worker: str, lease_s: float) -> str:
        task_id = (await store.create_task(_task(acct))).task_id
        clock.advance(0.001)  # distinct creation times: the claim order is known
        got = await store.claim_task(worker, lease_s)
        assert got is not None and got.task_id == task_id
        return task_id

    finished = await claimed("w-finished", 300)
    assert await store.finish_task(finished, "w-finished", {"videos": []})
    reclaimed = await claimed("w-killed", 1)
    running = await claimed("w-running", 300)
    given_back = await claimed("w-given-back", 300)
    assert await store.release_task(given_back, "w-given-back", delay_s=60)
    own = await claimed("w-own", 300)
    waiting = (await store.create_task(_task(acct))).task_id
    clock.advance(2)  # w-killed's lease ran out: a new attempt takes the task
    again = await store.claim_task("w-new", 300)
    assert again is not None and again.task_id == reclaimed and again.attempts == 2

    root = tmp_path / "work"
    names = [
        f"{finished}-1",
        f"{reclaimed}-1",  # the killed attempt
        f"{reclaimed}-2",  # the live one
        f"{running}-1",
        f"{given_back}-1",
        f"{waiting}-1",  # never claimed: nobody can be running it
        "999999999999999999-1",  # a task that no longer exists
        f"{own}-1",
        "not-a-work-dir",
    ]
    for name in names:
        (root / name / "frames").mkdir(parents=True)
    removed = await remove_stale_workdirs(store, root, keep={f"{own}-1"})
    assert sorted(removed) == sorted(
        [
            f"{finished}-1",
            f"{reclaimed}-1",
            f"{given_back}-1",
            f"{waiting}-1",
            "999999999999999999-1",
        ]
    )
    left = sorted(p.name for p in root.iterdir())
    assert left == sorted([f"{reclaimed}-2", f"{running}-1", f"{own}-1", "not-a-work-dir"])
    # a leased attempt whose lease ran out is kept: its worker may still be alive (its heartbeat
    # is late); once another worker reclaims the task, the next sweep removes it
    clock.advance(301)
    assert await remove_stale_workdirs(store, root) == []


def test_parse_workdir() -> None:
    assert parse_workdir("218302965320211000-3") == ("218302965320211000", 3)
    for name in ("ballast", "x-", "-1", "a-b", "218302965320211000-1.tmp"):
        assert parse_workdir(name) is None


async def _until_gone(path: Path) -> None:
    deadline = time.monotonic() + 60
    while await asyncio.to_thread(path.exists):
        assert time.monotonic() < deadline, f"{path} was not removed"
        await asyncio.sleep(0.05)


async def test_worker_removes_dead_work_dirs_at_start_and_periodically(tmp_path: Path) -> None:
    dead_at_start = tmp_path / "data" / "work" / "111111111111111111-1"
    (dead_at_start / "frames").mkdir(parents=True)
    async with running_rig(tmp_path, worker={"workdir_sweep_s": 0.2}) as rig:
        await _until_gone(dead_at_start)
        # a finished task's dir that appears later (a worker killed on this machine) goes too
        task_id = await rig.create("a short clip")
        await rig.until(task_id, lambda t: t.status is TaskStatus.SUCCEED)
        later = rig.settings.work_dir / f"{task_id}-1"
        (later / "frames").mkdir(parents=True)
        await _until_gone(later)
