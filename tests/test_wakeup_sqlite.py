"""Cross-process wake-ups on SQLite: a worker's store hears commits made by another connection."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from reelgate.store import Store
from reelgate.store.wakeup import SqliteWatch

from .test_store import new_task


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'reelgate.db'}"


async def test_a_task_created_through_another_connection_wakes_the_waiter(tmp_path: Path) -> None:
    api = await Store.open(sqlite_url(tmp_path))
    worker = await Store.open(sqlite_url(tmp_path), migrate=False)
    try:
        acct = await api.create_account("a")
        assert not await worker.wait_for_tasks(0.05)  # nothing to claim: times out
        waiting = asyncio.create_task(worker.wait_for_tasks(30))
        await asyncio.sleep(0.05)
        await api.create_task(new_task(acct.account_id))
        assert await waiting  # woken by the commit, not by the timeout
    finally:
        await worker.close()
        await api.close()


async def test_other_writes_do_not_wake_idle_workers(tmp_path: Path) -> None:
    api = await Store.open(sqlite_url(tmp_path))
    worker = await Store.open(sqlite_url(tmp_path), migrate=False)
    try:
        acct = await api.create_account("a")
        task = await api.create_task(new_task(acct.account_id))
        assert await worker.wait_for_tasks(0.05)  # the submitted task is there
        assert await worker.claim_task("w1", 30) is not None
        waiting = asyncio.create_task(worker.wait_for_tasks(0.5))
        for percent in (10, 20, 30):  # commits, but nothing new to claim
            assert await api.heartbeat(task.task_id, "w1", 30, progress=percent)
            await asyncio.sleep(0.02)
        assert not await waiting
    finally:
        await worker.close()
        await api.close()


async def test_a_commit_between_two_waits_is_not_missed(tmp_path: Path) -> None:
    api = await Store.open(sqlite_url(tmp_path))
    worker = await Store.open(sqlite_url(tmp_path), migrate=False)
    try:
        acct = await api.create_account("a")
        assert not await worker.wait_for_tasks(0.02)
        await api.create_task(new_task(acct.account_id))  # while the worker is not waiting
        assert await worker.wait_for_tasks(30)
    finally:
        await worker.close()
        await api.close()


CREATE_IN_CHILD = """
import asyncio, sys
from decimal import Decimal
from reelgate.store import NewTask, Store

async def main() -> None:
    store = await Store.open(sys.argv[1], migrate=False)
    acct = await store.create_account("child")
    await store.create_task(
        NewTask(account_id=acct.account_id, model_name="kling-v1", params={"prompt": "p"},
                units=Decimal(1))
    )
    await store.close()

asyncio.run(main())
"""


async def test_a_task_created_by_another_process_wakes_the_waiter(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    worker = await Store.open(url)
    try:
        assert not await worker.wait_for_tasks(0.02)
        waiting = asyncio.create_task(worker.wait_for_tasks(60))
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CREATE_IN_CHILD, url, stderr=subprocess.PIPE
        )
        _, err = await child.communicate()
        assert child.returncode == 0, err.decode()
        assert await waiting
        assert await worker.claim_task("w1", 30) is not None
    finally:
        await worker.close()


def test_watching_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    watch = SqliteWatch(str(tmp_path / "missing.db"))
    assert not watch.task_waiting()
    watch.close()
    assert list(tmp_path.iterdir()) == []
