"""The store's lookups and prepared statements (store/db.py): on SQLite, statements marked
``prepared`` run compiled once on the sqlite3 connection; on PostgreSQL, lookups run on an
asyncpg pool of their own. Both must give what SQLAlchemy gives: the same rows, converted the
same way, the same defaults written, the same errors raised; lookups see every commit.
``store`` is conftest's (both backends); ``sqlite_store`` is for what only SQLite has."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from reelgate.store import NewTask, Store
from reelgate.store.db import (
    _access,
    _Lookups,
    lookup_connection,
    prepared,
    read_connection,
    write_transaction,
)
from reelgate.store.store import (
    _INSERT_TASK,
    _TASK_BY_ID,
    _TASK_PAGE,
    _TASK_PAGE_IDS,
    _row_to_task,
)
from reelgate.store.tables import tasks


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'reelgate.db'}")
    yield opened
    await opened.close()


def _new(account_id: int, **extra: object) -> NewTask:
    params = {"prompt": "a fox ü", "duration": "5", "nested": {"cfg": [0.5, None, True]}}
    return NewTask(account_id, "kling-v1", params, Decimal("1.5"), **extra)  # type: ignore[arg-type]


async def test_prepared_reads_give_what_sqlalchemy_gives(store: Store) -> None:
    creds = await store.create_account("a")
    made = [
        await store.create_task(_new(creds.account_id, external_task_id="mine", watermark=True)),
        await store.create_task(_new(creds.account_id, callback_url="http://x.test/cb")),
    ]
    claimed = await store.claim_task("w1", 60)
    assert claimed is not None
    await store.finish_task(claimed.task_id, "w1", {"videos": [{"id": "v", "duration": "5"}]})

    page = {"account_id": creds.account_id, "limit": 30, "offset": 0}
    async with lookup_connection(store.engine) as conn:
        fast = [_row_to_task(row) for row in await conn.execute(_TASK_PAGE, page)]
        ids = [row.task_id for row in await conn.execute(_TASK_PAGE_IDS, page)]
    async with read_connection(store.engine) as conn:  # SQLAlchemy's own execution
        plain = [_row_to_task(row) for row in await conn.execute(_TASK_PAGE, page)]
    assert fast == plain
    assert ids == [task.task_id for task in fast] == [task.task_id for task in reversed(made)]
    by_id = {task.task_id: task for task in fast}
    assert by_id[made[0].task_id].params == made[0].params  # JSON decoded, unicode and all
    assert by_id[made[0].task_id].watermark is True  # Boolean converted
    assert by_id[claimed.task_id].result["videos"][0]["id"] == "v"
    assert await store.list_task_ids(creds.account_id, 2, 1) == ids[1:2]

    found = await store.get_task(creds.account_id, "mine")  # by external id
    assert found is not None and found.task_id == made[0].task_id
    assert await store.get_task(creds.account_id + 1, made[0].task_id) is None


async def test_a_prepared_insert_writes_what_sqlalchemy_writes(sqlite_store: Store) -> None:
    store = sqlite_store
    creds = await store.create_account("a")
    task = await store.create_task(_new(creds.account_id))
    with sqlite3.connect(str(store.engine.url.database)) as raw:
        raw.row_factory = sqlite3.Row
        row = raw.execute("SELECT * FROM tasks WHERE task_id = ?", (task.task_id,)).fetchone()
        events = raw.execute("SELECT * FROM task_events WHERE task_id = ?", (task.task_id,))
        event = events.fetchone()
    assert json.loads(row["params"]) == task.params
    assert json.loads(row["result"]) == {}
    assert row["pokes"] == 0  # the column's Python-side default, though not in the values
    assert row["watermark"] == 0 and row["units"] == "1.5"
    assert event["status"] == "submitted" and json.loads(event["payload"])
    with pytest.raises(ValueError, match=r"tasks has no column \['unit'\]"):
        async with write_transaction(store.engine) as conn:
            await conn.execute(_INSERT_TASK, {**dict(row), "unit": "1"})


async def test_prepared_statements_raise_sqlalchemys_errors(store: Store) -> None:
    creds = await store.create_account("a")
    task = await store.create_task(_new(creds.account_id))
    async with read_connection(store.engine) as conn:
        row = (await conn.execute(select(tasks).where(tasks.c.task_id == task.task_id))).one()
    values = dict(row._mapping)
    with pytest.raises(IntegrityError):  # create_task retries a colliding task id on this
        async with write_transaction(store.engine) as conn:
            await conn.execute(_INSERT_TASK, values)
    with pytest.raises(KeyError, match="'ident'"):  # a SELECT takes every parameter it binds
        async with lookup_connection(store.engine) as conn:
            await conn.execute(_TASK_BY_ID, {"account_id": creds.account_id})
    assert await store.get_task(creds.account_id, task.task_id) == task  # nothing else changed


async def test_literal_values_in_a_prepared_statement_are_bound(store: Store) -> None:
    creds = await store.create_account("a")
    first = await store.create_task(_new(creds.account_id))
    await store.create_task(_new(creds.account_id))
    assert await store.claim_task("w", 60) is not None  # the oldest: now processing
    waiting = prepared(
        select(tasks.c.task_id).where(
            tasks.c.account_id == bindparam("account"), tasks.c.status == "submitted"
        )
    )
    async with lookup_connection(store.engine) as conn:
        ids = {row.task_id for row in await conn.execute(waiting, {"account": creds.account_id})}
    assert len(ids) == 1 and first.task_id not in ids


async def test_kept_lookup_connections_see_every_commit(store: Store) -> None:
    creds = await store.create_account("a")
    task = await store.create_task(_new(creds.account_id))
    assert (await store.get_task(creds.account_id, task.task_id)) is not None
    assert await store.claim_task("w", 60) is not None
    found = await store.get_task(creds.account_id, task.task_id)
    assert found is not None and found.status.value == "processing"
    # a plain SQLAlchemy read on the same kept connection leaves no transaction open behind
    async with lookup_connection(store.engine) as conn:
        await conn.execute(select(tasks.c.task_id))
    await store.finish_task(task.task_id, "w", {"videos": []})
    found = await store.get_task(creds.account_id, task.task_id)
    assert found is not None and found.status.value == "succeed"


async def test_each_thread_keeps_its_own_lookup_connection(sqlite_store: Store) -> None:
    lookups = _access(sqlite_store.engine).lookups
    assert isinstance(lookups, _Lookups)
    here = lookups.connection()
    assert lookups.connection() is here
    elsewhere: list[object] = []
    thread = threading.Thread(target=lambda: elsewhere.append(lookups.connection()))
    thread.start()
    thread.join()
    assert elsewhere and elsewhere[0] is not here
