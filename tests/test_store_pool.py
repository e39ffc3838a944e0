"""The PostgreSQL pool (store/db.py): a connection that sat idle is checked before use, so one
the server closed meanwhile is replaced unseen; a busy one is not checked at every use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy import literal_column, select
from sqlalchemy.exc import DBAPIError

from reelgate.store import NewTask, Store, db
from reelgate.store.accounts import hash_api_key

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
    conn = await lookups.connection()
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
