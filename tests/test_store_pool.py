"""The PostgreSQL pool (store/db.py): a connection that sat idle is checked before use, so one
the server closed meanwhile is replaced unseen; a busy one is not checked at every use. The
lookups' own pool, and a create as one statement on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy import literal_column, select
from sqlalchemy.exc import DBAPIError

from reelgate.domain.errors import InvalidParameterError
from reelgate.store import NewTask, Store, db
from reelgate.store.accounts import hash_api_key
from reelgate.store.tables import task_events, tasks

from .conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[Store]:
    store = await Store.open(postgres_url)
    yield store
    await store.close()


async def _kill_connections(store: Store) -> int:
    """Close every server connection of the store's database, as a restart would."""
    admin = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(admin)
    try:
        killed = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            store.engine.url.database,
        )
    finally:
        await conn.close()
    return len(killed)


def _count_pings(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    dialect = store.engine.sync_engine.dialect
    check = dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        pings.append(1)
        return check(dbapi_conn)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


async def test_an_idle_connection_the_server_closed_is_replaced_unseen(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = await pg_store.create_account("a")
    assert await pg_store.get_account(creds.account_id) is not None
    assert await _kill_connections(pg_store) >= 1
    monkeypatch.setattr(db, "PING_IDLE_S", 0.0)  # every pooled connection counts as idle
    pings = _count_pings(pg_store, monkeypatch)
    account = await pg_store.get_account(creds.account_id)
    assert account is not None and account.id == creds.account_id
    assert pings


async def test_a_busy_connection_is_not_checked_and_a_dead_one_fails_only_once(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = await pg_store.create_account("a")
    monkeypatch.setattr(db, "PING_IDLE_S", 3600.0)  # nothing counts as idle
    pings = _count_pings(pg_store, monkeypatch)
    for _ in range(3):
        assert await pg_store.get_account(creds.account_id) is not None
    assert not pings
    await _kill_connections(pg_store)
    with pytest.raises(DBAPIError) as failed:
        await pg_store.get_account(creds.account_id)
    assert failed.value.connection_invalidated
    # the pool dropped its connections from before the failure: the next read works
    assert await pg_store.get_account(creds.account_id) is not None


async def test_lookups_run_on_their_own_pool_and_outlive_a_server_restart(
    pg_store: Store,
) -> None:
    creds = await pg_store.create_account("a")
    assert await pg_store.account_for_api_key(creds.api_key) == creds.account_id
    lookups = db._access(pg_store.engine).lookups
    assert isinstance(lookups, db._PgLookups)
    conn = lookups
    rows = await conn.execute(db.prepared(select(literal_column("pg_backend_pid()"))))
    assert rows.scalar()  # a connection of the lookup pool answered
    assert await _kill_connections(pg_store) >= 2  # SQLAlchemy's pool and the lookups'
    pg_store._credentials.forget(f"api:{hash_api_key(creds.api_key)}")  # read it again
    assert await pg_store.account_for_api_key(creds.api_key) == creds.account_id


async def test_only_creates_that_count_tasks_wait_for_the_accounts_row(pg_store: Store) -> None:
    free = await pg_store.create_account("free")
    limited = await pg_store.create_account("limited", max_concurrent_tasks=5)
    admin = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    other = await asyncpg.connect(admin.rsplit("/", 1)[0] + "/" + str(pg_store.engine.url.database))
    try:
        lock = other.transaction()
        await lock.start()  # another transaction holds both accounts' rows (as an UPDATE
        # would: a task's insert still takes its key-share lock for the foreign key)
        await other.execute("SELECT id FROM accounts FOR NO KEY UPDATE")
        task = NewTask(free.account_id, "kling-v1", {"prompt": "p"}, Decimal(1))
        assert (await pg_store.create_task(task)).account_id == free.account_id
        waiting = asyncio.ensure_future(
            pg_store.create_task(
                NewTask(limited.account_id, "kling-v1", {"prompt": "p"}, Decimal(1))
            )
        )
        done, _ = await asyncio.wait([waiting], timeout=0.5)
        assert not done  # it counts the account's tasks: it waits for the row
        await lock.rollback()
        assert (await waiting).account_id == limited.account_id
    finally:
        await other.close()


def _comparable(row: Any, *varying: str) -> dict[str, Any]:
    return {key: value for key, value in row._mapping.items() if key not in varying}


async def _rows(store: Store, task_id: str) -> tuple[Any, list[Any]]:
    async with db.read_connection(store.engine) as conn:
        task = (await conn.execute(select(tasks).where(tasks.c.task_id == task_id))).one()
        events = (
            await conn.execute(select(task_events).where(task_events.c.task_id == task_id))
        ).all()
    return task, events


async def test_a_create_without_limits_is_one_statement_that_writes_what_the_transaction_writes(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = await pg_store.create_account("free")
    limited = await pg_store.create_account("limited", max_concurrent_tasks=100)
    writes: list[object] = []
    write = db._PgLookups.write

    async def counted(self: db._PgLookups, statement: Any, parameters: Any) -> Any:
        writes.append(statement)
        return await write(self, statement, parameters)

    monkeypatch.setattr(db._PgLookups, "write", counted)
    worker = await Store.open(str(pg_store.engine.url.render_as_string(False)), migrate=False)
    try:
        assert not await worker.wait_for_tasks(0.2)  # opens the LISTEN connection
        waiting = asyncio.ensure_future(worker.wait_for_tasks(10))
        made = {}
        for creds in (free, limited):
            new = NewTask(
                creds.account_id,
                "kling-v1",
                {"prompt": "a fox ü", "nested": {"cfg": [0.5, None, True]}},
                Decimal("1.5"),
                external_task_id="mine",
                callback_url="http://x.test/cb",
                watermark=True,
                base_url="http://api.test/",
                submitted_s=2.5,
            )
            made[creds.account_id] = await pg_store.create_task(new)
            if creds is free:
                assert await asyncio.wait_for(waiting, 5)  # the statement notified the worker
        assert len(writes) == 2  # both tried the statement; the limited one wrote nothing
        again = NewTask(limited.account_id, "kling-v1", {}, Decimal(1))
        await pg_store.create_task(again)
        assert len(writes) == 2  # the account counts its tasks: remembered, no second try
        fast, fast_events = await _rows(pg_store, made[free.account_id].task_id)
        slow, slow_events = await _rows(pg_store, made[limited.account_id].task_id)
        varying = ("task_id", "account_id", "created_at", "updated_at", "run_after")
        assert _comparable(fast, *varying) == _comparable(slow, *varying)
        assert fast.run_after - fast.created_at == slow.run_after - slow.created_at == 2500
        assert len(fast_events) == len(slow_events) == 1
        event_varying = ("id", "task_id", "created_at", "next_attempt_at", "payload")
        assert _comparable(fast_events[0], *event_varying) == _comparable(
            slow_events[0], *event_varying
        )
        assert fast_events[0].payload["task"]["external_task_id"] == "mine"
        assert (await pg_store.events_for(fast.task_id))[0].record().task_id == fast.task_id
        with pytest.raises(InvalidParameterError, match="already used"):
            await pg_store.create_task(
                NewTask(free.account_id, "kling-v1", {}, Decimal(1), external_task_id="mine")
            )
    finally:
        await worker.close()


async def test_a_create_whose_connection_is_lost_is_created_once(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = await pg_store.create_account("a")
    write = db._PgLookups.write
    lost: list[bool] = []

    async def commits_then_loses_the_connection(
        self: db._PgLookups, statement: Any, parameters: Any
    ) -> Any:
        result = await write(self, statement, parameters)
        if not lost:  # the reply never came: the caller cannot tell it committed
            lost.append(True)
            raise DBAPIError("...", None, ConnectionResetError(), connection_invalidated=True)
        return result

    monkeypatch.setattr(db._PgLookups, "write", commits_then_loses_the_connection)
    task = await pg_store.create_task(NewTask(creds.account_id, "kling-v1", {}, Decimal(1)))
    assert lost
    assert [t.task_id for t in await pg_store.list_tasks(creds.account_id, 1, 10)] == [task.task_id]
    assert len(await pg_store.events_for(task.task_id)) == 1


async def test_a_create_after_a_server_restart_goes_through_once(pg_store: Store) -> None:
    creds = await pg_store.create_account("a")
    await pg_store.create_task(NewTask(creds.account_id, "kling-v1", {}, Decimal(1)))
    assert await _kill_connections(pg_store) >= 2
    task = await pg_store.create_task(NewTask(creds.account_id, "kling-v1", {}, Decimal(1)))
    listed = await pg_store.list_tasks(creds.account_id, 1, 10)
    assert len(listed) == 2 and listed[0].task_id == task.task_id


async def test_the_lookup_pool_opens_at_most_its_size_and_serves_waiters_in_order(
    postgres_url: str,
) -> None:
    raw_url = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    opened: list[Any] = []

    async def connect() -> Any:
        opened.append(await asyncpg.connect(raw_url))
        return opened[-1]

    pool = db._AsyncpgPool(connect, 2)
    first, second = await pool.acquire(), await pool.acquire()
    waiters = [asyncio.ensure_future(pool.acquire()) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters) and len(opened) == 2
    waiters[1].cancel()  # gives up its place in the queue
    pool.release(first)
    assert await waiters[0] is first  # the first in line, the connection as it was
    pool.release(second, broken=True)  # closed: its place goes to the next waiter still there
    third = await waiters[2]
    assert second.is_closed() and third not in (first, second) and len(opened) == 3
    assert await third.fetchval("SELECT 1") == 1
    pool.release(first)
    pool.release(third)
    pool.expire()  # a server restart: the idle ones are closed, new ones opened
    assert first.is_closed() and third.is_closed()
    fresh = await pool.acquire()
    assert fresh is opened[-1] and len(opened) == 4
    await pool.close()
    assert fresh.is_closed() is False  # in use at close: closed when given back
    pool.release(fresh)
    assert fresh.is_closed()
    with pytest.raises(asyncpg.InterfaceError):
        await pool.acquire()


async def test_a_lookup_cancelled_midway_closes_its_connection_and_the_next_works(
    pg_store: Store,
) -> None:
    lookups = db._access(pg_store.engine).lookups
    assert isinstance(lookups, db._PgLookups)
    pid = literal_column("pg_backend_pid()")
    before = (await lookups.execute(select(pid))).scalar()
    sleeping = asyncio.ensure_future(lookups.execute(select(pid, literal_column("pg_sleep(30)"))))
    await asyncio.sleep(0.2)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    after = (await lookups.execute(select(pid))).scalar()
    assert after is not None and after != before  # the one in doubt was not reused
