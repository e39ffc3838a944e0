"""SQLite's one writer with group commit (store/db.py): writes queued while one commits share
its fsync, each returns only once committed, and one that fails takes none of the others."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from reelgate.domain.errors import InvalidParameterError
from reelgate.store import NewTask, Store
from reelgate.store.tables import accounts


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'reelgate.db'}")
    yield store
    await store.close()


@pytest.fixture
def commits() -> Iterator[list[int]]:
    """COMMITs issued by any engine of this process while the test runs."""
    seen: list[int] = []

    def on_commit(_conn: object) -> None:
        seen.append(1)

    event.listen(Engine, "commit", on_commit)
    yield seen
    event.remove(Engine, "commit", on_commit)


def _task(account_id: int, external: str | None = None) -> NewTask:
    return NewTask(
        account_id=account_id,
        model_name="kling-v1",
        params={"prompt": "p"},
        units=Decimal(1),
        external_task_id=external,
    )


def _committed_task_ids(store: Store) -> set[str]:
    """What another connection (another process, after a crash) finds in the file."""
    path = str(store.engine.url.database)
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT task_id FROM tasks")}


def _take_write_lock(store: Store, timeout_s: float) -> None:
    """Take and give back the file's write lock from another connection, as another process
    writing would (in a thread: the store's own loop goes on meanwhile)."""
    other = sqlite3.connect(str(store.engine.url.database), timeout=timeout_s)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_concurrent_creates_share_commits_and_are_durable_when_answered(
    sqlite_store: Store, commits: list[int]
) -> None:
    acct = await sqlite_store.create_account("a")
    commits.clear()
    created = await asyncio.gather(
        *(sqlite_store.create_task(_task(acct.account_id)) for _ in range(40))
    )
    assert len({t.task_id for t in created}) == 40
    # every answered create is in the file for any other connection
    assert {t.task_id for t in created} <= _committed_task_ids(sqlite_store)
    # queued writes joined the transaction in front of them: far fewer fsyncs than creates
    assert 1 <= len(commits) < 20, len(commits)


async def test_a_failing_write_takes_only_its_own_changes_back(sqlite_store: Store) -> None:
    acct = await sqlite_store.create_account("a")
    await sqlite_store.create_task(_task(acct.account_id, external="taken"))

    results = await asyncio.gather(
        sqlite_store.create_task(_task(acct.account_id, external="fresh-1")),
        sqlite_store.create_task(_task(acct.account_id, external="taken")),  # refused
        sqlite_store.create_task(_task(acct.account_id, external="fresh-2")),
        return_exceptions=True,
    )
    assert isinstance(results[1], InvalidParameterError)
    kept = [r for r in results if not isinstance(r, BaseException)]
    assert len(kept) == 2
    listed = await sqlite_store.list_tasks(acct.account_id, 1, 10)
    assert sorted(t.external_task_id or "" for t in listed) == ["fresh-1", "fresh-2", "taken"]


async def test_a_write_that_raises_midway_leaves_nothing(sqlite_store: Store) -> None:
    class Boom(Exception):
        pass

    async def half_then_raise() -> None:
        async with sqlite_store._writer() as conn:
            await conn.execute(insert(accounts).values(name="half", created_at=0))
            raise Boom

    async def whole() -> None:
        async with sqlite_store._writer() as conn:
            await conn.execute(insert(accounts).values(name="whole", created_at=0))

    outcome = await asyncio.gather(half_then_raise(), whole(), return_exceptions=True)
    assert isinstance(outcome[0], Boom) and outcome[1] is None
    path = str(sqlite_store.engine.url.database)
    with sqlite3.connect(path) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM accounts")}
    assert names == {"whole"}


async def test_a_cancelled_writer_does_not_hold_up_the_others(sqlite_store: Store) -> None:
    acct = await sqlite_store.create_account("a")
    first = asyncio.ensure_future(sqlite_store.create_task(_task(acct.account_id)))
    others = [
        asyncio.ensure_future(sqlite_store.create_task(_task(acct.account_id))) for _ in range(5)
    ]
    await asyncio.sleep(0)
    first.cancel()
    done = await asyncio.gather(*others)
    assert {t.task_id for t in done} <= _committed_task_ids(sqlite_store)
    # the store still takes writes afterwards
    later = await sqlite_store.create_task(_task(acct.account_id))
    assert later.task_id in _committed_task_ids(sqlite_store)


async def test_a_statement_error_rolls_back_its_own_write_and_the_next_ones_commit(
    sqlite_store: Store,
) -> None:
    async def insert_account(account_id: int, name: str) -> None:
        async with sqlite_store._writer() as conn:
            await conn.execute(insert(accounts).values(name=f"{name}-first", created_at=0))
            await conn.execute(insert(accounts).values(id=account_id, name=name, created_at=0))

    await insert_account(100, "one")
    outcome = await asyncio.gather(
        insert_account(100, "clash"),  # the primary key is taken: IntegrityError
        insert_account(200, "two"),
        return_exceptions=True,
    )
    assert isinstance(outcome[0], IntegrityError) and outcome[1] is None
    path = str(sqlite_store.engine.url.database)
    with sqlite3.connect(path) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM accounts")}
    assert names == {"one-first", "one", "two-first", "two"}


async def test_a_write_waits_for_another_process_holding_the_write_lock(
    sqlite_store: Store,
) -> None:
    creds = await sqlite_store.create_account("a")
    await sqlite_store.create_task(_task(creds.account_id))  # the writer's connection is open
    other = sqlite3.connect(str(sqlite_store.engine.url.database), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # as another process writing would
        waiting = asyncio.ensure_future(sqlite_store.create_task(_task(creds.account_id, "x")))
        done, _ = await asyncio.wait([waiting], timeout=0.3)
        assert not done  # it waits for the lock (in a thread: the loop goes on)
        assert await sqlite_store.get_task(creds.account_id, "x") is None
        other.execute("COMMIT")
        created = await asyncio.wait_for(waiting, 10)
    finally:
        other.close()
    assert created.task_id in _committed_task_ids(sqlite_store)
    # and once the lock is free again, writes go on as before
    later = await sqlite_store.create_task(_task(creds.account_id))
    assert later.task_id in _committed_task_ids(sqlite_store)


async def test_the_file_is_free_for_other_processes_once_writes_stop(sqlite_store: Store) -> None:
    """Once no writer waits, no transaction is left open, even when waiting writers were
    cancelled, so another process gets the file's write lock."""
    acct = await sqlite_store.create_account("a")
    for wave in range(3):
        writes = [
            asyncio.ensure_future(sqlite_store.create_task(_task(acct.account_id)))
            for _ in range(30)
        ]
        for _ in range(wave * 3):  # let some commits start, then cancel writers still waiting
            await asyncio.sleep(0)
        for write in writes[10::3]:
            write.cancel()
        results = await asyncio.gather(*writes, return_exceptions=True)
        done = [r for r in results if not isinstance(r, BaseException)]
        assert {t.task_id for t in done} <= _committed_task_ids(sqlite_store)
        # a transaction left open with no flush to end it would hold the lock for good
        await asyncio.to_thread(_take_write_lock, sqlite_store, 10)
    later = await sqlite_store.create_task(_task(acct.account_id))
    assert later.task_id in _committed_task_ids(sqlite_store)


async def test_a_refused_write_leaves_the_file_free_for_other_processes(
    sqlite_store: Store,
) -> None:
    """A write that raises (a taken external id) is rolled back, and its transaction ended:
    left open, it held the file's write lock until the next write, and a `reelgate worker`
    on the same file waited for it."""
    acct = await sqlite_store.create_account("a")
    await sqlite_store.create_task(_task(acct.account_id, external="taken"))
    with pytest.raises(InvalidParameterError):
        await sqlite_store.create_task(_task(acct.account_id, external="taken"))
    # "database is locked" after 10 s if the refused write's transaction were still open
    await asyncio.to_thread(_take_write_lock, sqlite_store, 10)
