"""Cancel (``POST /v1/videos/text2video/{id}/cancel``) through the HTTP API, and the store's
cancel request on both backends."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from reelgate.domain.tasks import CANCEL_REQUESTED, CANCELLED_BY_CLIENT, TaskStatus
from reelgate.store import NewTask, Store
from reelgate.store.db import create_engine
from reelgate.store.migrate import downgrade, upgrade

from .control_support import CREATE, HOOK, control_app, finished, processing
from .helpers import assert_error, assert_ok

# A catalogue whose kling-v3 keeps tasks queued (time in submitted) until the clock moves.
QUEUED = [
    {"id": "kling-v3", "engine": "sandbox", "submitted_s": 600},
    {"id": "kling-v1", "engine": "sandbox"},
]


def cancelled(task: dict[str, object]) -> bool:
    return task["task_status"] == "failed" and task["task_status_msg"] == CANCELLED_BY_CLIENT


async def test_cancel_a_queued_task_fails_it_at_once_free_with_its_callback(
    tmp_path: Path,
) -> None:
    async with control_app(tmp_path, QUEUED) as app:
        task_id = await app.create("a queued kite")
        assert (await app.get(task_id))["task_status"] == "submitted"

        task = assert_ok(await app.cancel(task_id))
        assert task["task_id"] == task_id
        assert cancelled(task), task
        assert task["final_unit_deduction"] == "0" and task["task_result"] == {}
        assert await app.events(task_id) == [("submitted", HOOK), ("failed", HOOK)]

        again = assert_ok(await app.cancel(task_id))  # idempotent: the same answer again
        assert cancelled(again) and again["updated_at"] == task["updated_at"]
        assert await app.events(task_id) == [("submitted", HOOK), ("failed", HOOK)]


async def test_cancel_by_external_id_under_the_gateway_prefix(tmp_path: Path) -> None:
    async with control_app(tmp_path, QUEUED) as app:
        task_id = await app.create("a queued boat", external_task_id="order/42")
        task = assert_ok(await app.cancel("order%2F42", prefix="/kling"))
        assert task["task_id"] == task_id and cancelled(task)
        assert task["task_info"] == {"external_task_id": "order/42"}


@pytest.mark.parametrize("directive", ["[[sandbox:slow=60]]", "[[sandbox:stall]]"])
async def test_cancel_a_running_sandbox_task(tmp_path: Path, directive: str) -> None:
    async with control_app(tmp_path, slots=1) as app:
        task_id = await app.create(f"a lighthouse {directive}")
        await app.until(task_id, processing)

        first = assert_ok(await app.cancel(task_id))
        if first["task_status"] == "processing":  # the worker sees it with its next heartbeat
            assert first["task_status_msg"] == CANCEL_REQUESTED
            assert assert_ok(await app.cancel(task_id))["task_status"] in ("processing", "failed")
        task = await app.until(task_id, finished)
        assert cancelled(task), task
        assert task["final_unit_deduction"] == "0" and task["task_progress"] < 100
        assert await app.events(task_id) == [
            ("submitted", HOOK),
            ("processing", HOOK),
            ("failed", HOOK),
        ]
        assert app.stored_files(task_id) == []

        # the engine stopped: the only slot is free for the next task, which succeeds
        nxt = await app.create("a quick kite")
        done = await app.until(nxt, finished)
        assert done["task_status"] == "succeed", done
        # its work dir goes once the attempt has ended, just after the status was written
        await app.until_idle()
        record = await app.store.get_task_by_id(task_id)
        assert record is not None and record.attempts == 1


async def test_cancel_a_finished_task_is_400_and_unknown_is_404(tmp_path: Path) -> None:
    async with control_app(tmp_path) as app:
        task_id = await app.create("a quick kite")
        done = await app.until(task_id, finished)
        assert done["task_status"] == "succeed"
        assert_error(await app.cancel(task_id), 400, 1200, task_id, "already finished", "succeed")
        assert (await app.get(task_id))["task_status"] == "succeed"

        failed = await app.create("a broken kite [[sandbox:fail]]")
        assert (await app.until(failed, finished))["task_status"] == "failed"
        assert_error(await app.cancel(failed), 400, 1200, "already finished as failed")

        assert_error(await app.cancel("123456789012345678"), 404, 1203, "123456789012345678")
        assert_error(await app.cancel("x" * 257), 404, 1203, "1..256")
        # another account's task is not found either
        other = await app.store.create_account("other")
        r = await app.client.post(
            f"{CREATE}/{task_id}/cancel", headers={"Authorization": f"Bearer {other.api_key}"}
        )
        assert_error(r, 404, 1203)


async def test_cancel_needs_the_same_auth_as_get(tmp_path: Path) -> None:
    async with control_app(tmp_path, QUEUED) as app:
        task_id = await app.create("a queued kite")
        assert_error(await app.client.post(f"{CREATE}/{task_id}/cancel"), 401, 1001)
        r = await app.client.post(
            f"{CREATE}/{task_id}/cancel", headers={"Authorization": "Bearer nope"}
        )
        assert_error(r, 401, 1002)
        assert (await app.get(task_id))["task_status"] == "submitted"


async def test_a_cancelled_task_whose_worker_died_ends_and_is_never_reclaimed(
    tmp_path: Path,
) -> None:
    async with control_app(tmp_path, QUEUED) as app:
        # only a worker that will die runs here: the live one is stopped first
        app.worker.request_stop()
        await app.worker.stop()
        task_id = await app.create("a kite on a dead worker", model="kling-v1", duration="5")
        dead = await app.store.claim_task("dead-worker", 30)
        assert dead is not None and dead.task_id == task_id

        task = assert_ok(await app.cancel(task_id))
        assert task["task_status"] == "processing"
        assert task["task_status_msg"] == CANCEL_REQUESTED
        app.clock.advance(31)  # the dead worker's lease runs out
        assert await app.store.claim_task("w2", 30) is None  # never reclaimed
        task = assert_ok(await app.cancel(task_id))  # the API ends it: nobody else will
        assert cancelled(task), task
        record = await app.store.get_task_by_id(task_id)
        assert record is not None and record.attempts == 1
        assert [s for s, _ in await app.events(task_id)] == ["submitted", "processing", "failed"]


# -- the store's side, on both backends ----------------------------------------------------


async def _new(store: Store) -> tuple[int, str]:
    account = (await store.create_account("c")).account_id
    record = await store.create_task(
        NewTask(account, "kling-v1", {"prompt": "p"}, Decimal(2), callback_url=HOOK)
    )
    return account, record.task_id


async def test_store_cancel_request_reaches_the_holder_by_heartbeat(store: Store) -> None:
    account, task_id = await _new(store)
    claimed = await store.claim_task("w1", 30)
    assert claimed is not None and claimed.started_at is not None
    beat = await store.heartbeat(task_id, "w1", 30)
    assert beat is not None and beat.cancel_reason is None

    marked = await store.request_cancel(account, task_id)
    assert marked is not None and marked.cancelling
    assert marked.status is TaskStatus.PROCESSING and marked.status_msg == CANCEL_REQUESTED
    beat = await store.heartbeat(task_id, "w1", 30)
    assert beat is not None and beat.cancel_reason == CANCELLED_BY_CLIENT
    assert await store.heartbeat(task_id, "w2", 30) is None  # not the holder

    assert await store.fail_task(task_id, "w1", CANCELLED_BY_CLIENT)
    ended = await store.get_task_by_id(task_id)
    assert ended is not None and ended.status is TaskStatus.FAILED
    assert await store.units_charged(account) == 0
    assert await store.request_cancel(account, "nope") is None


async def test_store_cancel_of_a_given_back_task_ends_it_at_once(store: Store) -> None:
    account, task_id = await _new(store)
    assert await store.claim_task("w1", 30) is not None
    assert await store.release_task(task_id, "w1", delay_s=60)  # e.g. a disk-full retry
    ended = await store.request_cancel(account, task_id)
    assert ended is not None and ended.status is TaskStatus.FAILED
    assert ended.status_msg == CANCELLED_BY_CLIENT


# -- migration 0003 --------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    return str(request.getfixturevalue("postgres_url"))


async def test_tasks_queued_before_0003_are_claimable_and_cancellable(database_url: str) -> None:
    engine = create_engine(database_url)
    await upgrade(engine, "0002")
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO accounts (id, name, created_at) VALUES (1, 'o', 0)"))
        for task_id in ("217413177147939001", "217413177147939002"):
            await conn.execute(
                text(
                    "INSERT INTO tasks (task_id, account_id, model_name, params, status,"
                    " status_msg, progress, watermark, result, units, created_at, updated_at,"
                    " attempts) VALUES (:id, 1, 'kling-v1', '{}', 'submitted', '', 0, false,"
                    " '{}', '1', 0, 0, 0)"
                ),
                {"id": task_id},
            )
    await engine.dispose()

    store = await Store.open(database_url)  # migrates to head
    try:
        claimed = await store.claim_task("w1", 30)
        assert claimed is not None and claimed.task_id == "217413177147939001"
        assert claimed.run_after == 0 and claimed.started_at is not None
        assert claimed.cancel_reason is None
        ended = await store.request_cancel(1, "217413177147939002")
        assert ended is not None and ended.status is TaskStatus.FAILED
    finally:
        await store.close()
    engine = create_engine(database_url)
    try:
        await downgrade(engine, "0002")  # and back: the columns go, the rows stay
        async with engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one()
        assert count == 2
    finally:
        await engine.dispose()


async def test_the_cancel_route_is_published_with_its_wire_models(tmp_path: Path) -> None:
    async with control_app(tmp_path) as app:
        spec = (await app.client.get("/openapi.json")).json()
    operation = spec["paths"][f"{CREATE}/{{task_id}}/cancel"]["post"]
    assert operation["security"] == [{"bearer": []}]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("Envelope_TaskData_")
    assert {"400", "401", "404"} <= set(operation["responses"])
    codes = operation["responses"]["400"]["content"]["application/json"]["examples"]
    assert "1200" in codes
    assert f"/kling{CREATE}/{{task_id}}/cancel" not in spec["paths"]  # served, not listed twice


async def test_a_result_that_wins_the_race_with_a_cancel_stands(store: Store) -> None:
    account, task_id = await _new(store)
    assert await store.claim_task("w1", 30) is not None
    marked = await store.request_cancel(account, task_id)
    assert marked is not None and marked.status_msg == CANCEL_REQUESTED
    assert await store.finish_task(task_id, "w1", {"videos": []})  # before its next heartbeat
    done = await store.get_task_by_id(task_id)
    assert done is not None and done.status is TaskStatus.SUCCEED and done.status_msg == ""
    assert await store.request_cancel(account, task_id) == done  # finished: unchanged
