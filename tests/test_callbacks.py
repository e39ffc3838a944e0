"""Callback delivery against a real HTTP receiver on loopback, over SQLite and PostgreSQL.

The receiver (reelgate.callbacks.receiver) is a small asyncio HTTP/1.1 server that records
every request and can be scripted per path to answer an error status, hang, or drop the
connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from reelgate.callbacks import USER_AGENT, CallbackDispatcher, verify_signature
from reelgate.callbacks.receiver import Receiver
from reelgate.domain.tasks import CALLBACK_FIELDS, TaskStatus, no_urls
from reelgate.settings import Settings
from reelgate.storage import LocalStorage
from reelgate.store import NewTask, Store
from reelgate.store.db import create_engine
from reelgate.store.migrate import upgrade
from reelgate.store.tables import task_events

# -- fixtures and helpers (the `store` fixture, SQLite and PostgreSQL, is in conftest) ---------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        callback_allow_private=True,
        callback_backoff_s=0.05,
        callback_timeout_s=1.0,
        callback_max_attempts=5,
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as rx:
        yield rx


@asynccontextmanager
async def running(dispatcher: CallbackDispatcher) -> AsyncIterator[CallbackDispatcher]:
    await dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.stop()


async def create_task(store: Store, url: str, external_id: str | None = None) -> str:
    account = await store.create_account(f"acct-{uuid.uuid4().hex[:8]}")
    record = await store.create_task(
        NewTask(
            account.account_id,
            "kling-v1",
            {"prompt": "p"},
            Decimal(1),
            external_task_id=external_id,
            callback_url=url,
        )
    )
    return record.task_id


async def start_processing(store: Store, task_id: str) -> None:
    claimed = await store.claim_task("w1", 30)
    assert claimed is not None and claimed.task_id == task_id


async def succeed(store: Store, task_id: str) -> None:
    assert await store.finish_task(task_id, "w1", {"videos": []})


async def deliveries(store: Store, task_id: str) -> list[tuple[str, str, int, str | None]]:
    """(status, delivery, attempts, last_error) of each event of the task, oldest first."""
    c = task_events.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(c.status, c.delivery, c.attempts, c.last_error)
            .where(c.task_id == task_id)
            .order_by(c.id)
        )
        return [(r.status, r.delivery, r.attempts, r.last_error) for r in rows]


async def arrived(receiver: Receiver, count: int, path: str | None = None) -> None:
    async with asyncio.timeout(30):  # a failure detector, not a speed bound
        await receiver.wait_for_count(count, path)


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds; fail after 30 s (a failure detector, not a speed bound)."""
    async with asyncio.timeout(30):
        # Polling on purpose: the condition is database state, which signals nothing.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def dispatcher_for(store: Store, settings: Settings, **kw: Any) -> CallbackDispatcher:
    kw.setdefault("links", lambda base, ttl: no_urls)
    return CallbackDispatcher(store, settings, poll_interval_s=0.1, **kw)


# -- tests ----------------------------------------------------------------------------------


async def test_status_changes_arrive_in_order_with_documented_body_and_signature(
    store: Store, settings: Settings, receiver: Receiver
) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    settings = settings.replace(webhook_secret=secret)
    async with running(dispatcher_for(store, settings)):
        # Events are written straight to the store, as another process would: the
        # dispatcher finds them by polling.
        task_id = await create_task(store, receiver.url(), external_id="ext-1")
        await arrived(receiver, 1)
        await start_processing(store, task_id)
        await arrived(receiver, 2)
        await succeed(store, task_id)
        await arrived(receiver, 3)

    bodies = [r.payload for r in receiver.requests]
    assert [b["task_status"] for b in bodies] == ["submitted", "processing", "succeed"]
    for body in bodies:
        assert list(body) == list(CALLBACK_FIELDS)  # flat, exactly the documented fields
        assert body["task_id"] == task_id
        assert body["task_info"] == {"external_task_id": "ext-1"}
        assert body["task_status_msg"] == ""
        assert body["created_at"] == bodies[0]["created_at"]
    assert [b["updated_at"] for b in bodies] == sorted(b["updated_at"] for b in bodies)
    assert [b["final_unit_deduction"] for b in bodies] == ["0", "0", "1"]
    assert [b["task_result"] for b in bodies] == [{}, {}, {"videos": []}]

    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(set(ids)) == 3 and all(i.startswith(f"evt_{task_id}_") for i in ids)
    for r in receiver.requests:
        assert r.headers["content-type"] == "application/json"
        assert r.headers["user-agent"] == USER_AGENT
        assert abs(int(r.headers["webhook-timestamp"]) - time.time()) < 60
        assert verify_signature(secret, r.headers, r.body)
        forged = r.body.replace(task_id.encode(), b"0" * len(task_id))
        assert forged != r.body and not verify_signature(secret, r.headers, forged)
        assert not verify_signature(
            "whsec_" + base64.b64encode(b"x" * 32).decode(), r.headers, r.body
        )
    assert await deliveries(store, task_id) == [
        ("submitted", "delivered", 1, None),
        ("processing", "delivered", 1, None),
        ("succeed", "delivered", 1, None),
    ]


async def test_receiver_failing_twice_still_gets_every_event_in_order(
    store: Store, settings: Settings, receiver: Receiver
) -> None:
    settings = settings.replace(webhook_secret="plain secret")
    receiver.script("/hook", "500", "500")
    task_id = await create_task(store, receiver.url())
    await start_processing(store, task_id)
    await succeed(store, task_id)

    async with running(dispatcher_for(store, settings)):
        await arrived(receiver, 5)

    seen = [(r.payload["task_status"], r.answer) for r in receiver.requests]
    assert seen == [
        ("submitted", "500"),
        ("submitted", "500"),
        ("submitted", "200"),
        ("processing", "200"),
        ("succeed", "200"),
    ]
    first, second, third = receiver.requests[:3]
    # One event keeps its id across retries; each attempt is signed afresh.
    assert {r.headers["webhook-id"] for r in (first, second, third)} == {
        first.headers["webhook-id"]
    }
    assert all(verify_signature("plain secret", r.headers, r.body) for r in receiver.requests)
    # Backoff: 0.05 s then 0.1 s (+-20 % jitter).
    assert second.at - first.at >= 0.04 - 0.005
    assert third.at - second.at >= 0.08 - 0.005
    assert await deliveries(store, task_id) == [
        ("submitted", "delivered", 3, None),
        ("processing", "delivered", 1, None),
        ("succeed", "delivered", 1, None),
    ]


async def test_hanging_receiver_times_out_without_blocking_other_tasks(
    store: Store, settings: Settings, receiver: Receiver
) -> None:
    # Long enough that the fast task's callbacks never race the slow attempt's timeout.
    settings = settings.replace(callback_timeout_s=5.0)
    receiver.always("/slow", "hang")
    slow = await create_task(store, receiver.url("/slow"))
    fast = await create_task(store, receiver.url("/fast"))

    async with running(dispatcher_for(store, settings)):
        await arrived(receiver, 1, "/slow")
        # The task itself moves on while its callback hangs.
        await start_processing(store, slow)
        await succeed(store, slow)
        await start_processing(store, fast)
        await succeed(store, fast)
        await arrived(receiver, 3, "/fast")
        # Every callback of the other task arrived while the slow one was still hanging.
        assert (await deliveries(store, slow))[0][2] == 0

        async def slow_attempt_timed_out() -> bool:
            _status, _delivery, attempts, _error = (await deliveries(store, slow))[0]
            return attempts >= 1

        await eventually(slow_attempt_timed_out)

    assert [r.payload["task_status"] for r in receiver.to("/fast")] == [
        "submitted",
        "processing",
        "succeed",
    ]
    # Later events of the slow task wait behind its first one.
    assert {r.payload["task_status"] for r in receiver.to("/slow")} == {"submitted"}
    slow_events = await deliveries(store, slow)
    assert slow_events[0][1] == "pending" and slow_events[0][3] == "timed out after 5 s"
    assert [e[1] for e in slow_events[1:]] == ["pending", "pending"]
    task = await store.get_task_by_id(slow)
    assert task is not None and task.status is TaskStatus.SUCCEED


@pytest.mark.parametrize(
    ("answer", "error"),
    [("500", "HTTP 500"), ("503", "HTTP 503"), ("close", "RemoteProtocolError: ")],
)
async def test_gives_up_after_max_attempts(
    store: Store, settings: Settings, receiver: Receiver, answer: str, error: str
) -> None:
    settings = settings.replace(callback_max_attempts=3, callback_backoff_s=0.01)
    receiver.always("/hook", answer)
    task_id = await create_task(store, receiver.url())
    dispatcher = dispatcher_for(store, settings)
    attempts = 0
    try:
        while (await deliveries(store, task_id))[0][1] == "pending":
            attempts += await dispatcher.run_once()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # past any retry time: a dead event is never sent again
        assert await dispatcher.run_once() == 0
    finally:
        await dispatcher.stop()

    assert attempts == 3 and len(receiver.requests) == 3
    [(status, delivery, count, last_error)] = await deliveries(store, task_id)
    assert (status, delivery, count) == ("submitted", "dead", 3)
    assert last_error is not None and last_error.startswith(error)


async def test_target_resolving_to_loopback_is_refused_at_delivery(
    store: Store, settings: Settings, receiver: Receiver
) -> None:
    # The API checks at create time; the name may point elsewhere by delivery time.
    settings = settings.replace(callback_allow_private=False)
    task_id = await create_task(store, receiver.url(host="localhost"))
    dispatcher = dispatcher_for(store, settings)
    try:
        assert await dispatcher.run_once() == 1
        assert await dispatcher.run_once() == 0
    finally:
        await dispatcher.stop()

    assert receiver.requests == []
    [(_, delivery, count, last_error)] = await deliveries(store, task_id)
    assert (delivery, count) == ("dead", 1)
    assert last_error is not None and "loopback" in last_error


async def test_public_target_is_sent_when_private_ones_are_refused(
    store: Store, settings: Settings
) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    settings = settings.replace(callback_allow_private=False)
    task_id = await create_task(store, "http://93.184.215.14:8080/hook?x=1")
    dispatcher = dispatcher_for(store, settings, transport=httpx.MockTransport(answer))
    try:
        assert await dispatcher.run_once() == 1
    finally:
        await dispatcher.stop()
    assert [str(r.url) for r in sent] == ["http://93.184.215.14:8080/hook?x=1"]
    assert json.loads(sent[0].content)["task_id"] == task_id
    assert (await deliveries(store, task_id))[0][1] == "delivered"


async def test_concurrent_deliveries_are_bounded(
    store: Store, settings: Settings, receiver: Receiver
) -> None:
    receiver.always("/slow", "hang")
    for _ in range(3):
        await create_task(store, receiver.url("/slow"))
    async with running(dispatcher_for(store, settings, concurrency=2, stop_grace_s=0)):
        await arrived(receiver, 2)
        await asyncio.sleep(0.3)
        assert len(receiver.requests) == 2


async def test_stop_cuts_hanging_attempt_and_it_is_sent_again_later(
    store: Store, settings: Settings, receiver: Receiver
) -> None:
    receiver.script("/hook", "hang")
    task_id = await create_task(store, receiver.url())
    dispatcher = dispatcher_for(store, settings, stop_grace_s=0.1)
    await dispatcher.start()
    await arrived(receiver, 1)
    # The receiver hangs until the test ends: stop() returns only because it cuts the attempt.
    await asyncio.wait_for(dispatcher.stop(), 30)
    # Unrecorded, the attempt does not count: at least once, across a restart.
    assert await deliveries(store, task_id) == [("submitted", "pending", 0, None)]

    again = dispatcher_for(store, settings)
    try:
        assert await again.run_once() == 1
    finally:
        await again.stop()
    assert [r.answer for r in receiver.requests] == ["hang", "200"]
    assert receiver.requests[0].body == receiver.requests[1].body
    assert (await deliveries(store, task_id))[0][1] == "delivered"


# -- rendering at delivery ------------------------------------------------------------------


async def test_links_are_signed_at_delivery_under_the_base_the_task_came_through(
    store: Store, settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "files", b"k" * 32, ttl_s=3600)
    mp4 = tmp_path / "clip.mp4"
    mp4.write_bytes(b"\x00" * 64)
    account = await store.create_account("links")
    ids = []
    for base in ("https://videos.example:8443/", None):
        record = await store.create_task(
            NewTask(
                account.account_id,
                "kling-v1",
                {"prompt": "p"},
                Decimal(1),
                callback_url=receiver.url(),
                base_url=base,
            )
        )
        key = f"videos/{record.task_id}/0.mp4"
        storage.put(key, mp4, "video/mp4")
        await start_processing(store, record.task_id)
        video = {"id": "v", "key": key, "duration": "5"}
        assert await store.finish_task(record.task_id, "w1", {"videos": [video]})
        ids.append(record.task_id)
    # The store holds the change, not a body: no link was signed inside its transaction.
    final = (await store.events_for(ids[0]))[-1]
    assert "task_result" not in final.payload and final.base_url == "https://videos.example:8443/"

    def links(base: str, ttl: int | None) -> Any:
        return lambda key: storage.sign(key, base, ttl)

    for public_url, expected in [
        (None, ["https://videos.example:8443/files/", settings.base_url + "/files/"]),
        ("https://cdn.example", ["https://cdn.example/files/"] * 2),
    ]:
        receiver.requests.clear()
        for task_id in ids:  # (re)send only the final events
            (*earlier, event) = await store.events_for(task_id)
            for done in earlier:
                await store.mark_event(done.id, "delivered")
            await store.mark_event(event.id, "pending", next_attempt_at=0)
        configured = settings.replace(public_url=public_url)
        dispatcher = dispatcher_for(store, configured, links=links)
        try:
            while len(receiver.requests) < 2:
                await dispatcher.run_once()
        finally:
            await dispatcher.stop()
        by_task = {r.payload["task_id"]: r.payload for r in receiver.requests}
        for task_id, prefix in zip(ids, expected, strict=True):
            (video,) = by_task[task_id]["task_result"]["videos"]
            assert video["url"].startswith(prefix) and "signature=" in video["url"]
            assert by_task[task_id]["task_status"] == "succeed"


async def test_events_written_in_the_old_format_are_delivered_as_they_were(
    store: Store, settings: Settings, receiver: Receiver
) -> None:
    task_id = await create_task(store, receiver.url())
    async with store.engine.begin() as conn:  # a row as the old store wrote it: the body
        await conn.execute(task_events.delete().where(task_events.c.task_id == task_id))
        old_body = {"task_id": task_id, "task_status": "submitted", "legacy": "kept as is"}
        await conn.execute(
            task_events.insert().values(
                task_id=task_id,
                status="submitted",
                payload=old_body,
                callback_url=receiver.url(),
                created_at=0,
                delivery="pending",
                attempts=0,
                next_attempt_at=0,
            )
        )
    dispatcher = dispatcher_for(store, settings)
    try:
        assert await dispatcher.run_once() == 1
    finally:
        await dispatcher.stop()
    assert [r.payload for r in receiver.requests] == [old_body]


async def test_only_events_still_pending_and_due_are_leased(store: Store) -> None:
    task_id = await create_task(store, "http://a")
    (stale,) = await store.due_events()  # read, not leased: it stays due for others
    assert [e.id for e in await store.due_events()] == [stale.id]
    await store.mark_event(stale.id, "delivered")  # recorded after the read
    assert await store.lease_events([stale.id], 60) == set()  # the stale read is dropped
    await start_processing(store, task_id)
    (fresh,) = await store.due_events(lease_s=60)
    assert fresh.status == "processing"
    assert await store.lease_events([fresh.id], 60) == set()  # leased once only
    assert await store.due_events(skip_tasks=[task_id]) == []


async def test_outbox_rows_from_before_the_upgrade_are_still_delivered(
    tmp_path: Path, settings: Settings, receiver: Receiver
) -> None:
    """A database at revision 0001 (bodies in the outbox) upgraded to head in place."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    await upgrade(engine, "0001")
    body = {"task_id": "217413177147939001", "task_status": "succeed", "task_result": {}}
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO accounts (id, name, created_at) VALUES (1, 'old', 0)"))
        await conn.execute(
            text(
                "INSERT INTO tasks (task_id, account_id, model_name, params, status, status_msg,"
                " progress, callback_url, watermark, result, units, created_at, updated_at,"
                " attempts) VALUES (:id, 1, 'kling-v1', '{}', 'succeed', '', 100, :cb, 0, '{}',"
                " '1', 0, 0, 1)"
            ),
            {"id": body["task_id"], "cb": receiver.url()},
        )
        await conn.execute(
            text(
                "INSERT INTO task_events (task_id, status, payload, callback_url, created_at,"
                " delivery, attempts, next_attempt_at) VALUES (:id, 'succeed', :body, :cb, 0,"
                " 'pending', 0, 0)"
            ),
            {"id": body["task_id"], "body": json.dumps(body), "cb": receiver.url()},
        )
    await engine.dispose()

    store = await Store.open(url)  # migrates to head
    try:
        dispatcher = dispatcher_for(store, settings)
        try:
            assert await dispatcher.run_once() == 1
        finally:
            await dispatcher.stop()
        assert [r.payload for r in receiver.requests] == [body]
        (event,) = await store.events_for(body["task_id"])
        assert event.delivery == "delivered" and event.base_url is None
    finally:
        await store.close()
