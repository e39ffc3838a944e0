"""The store methods gateway mode needs (issue 10), on SQLite and on PostgreSQL: engine state
kept under the lease, a busy provider's task deferred to ``submitted``, and every lease of a
worker renewed in one call."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from reelgate.domain.tasks import TaskStatus
from reelgate.store import NewTask, Store
from reelgate.store.migrate import downgrade, upgrade

from .fault_support import FakeClock


async def _claimed(store: Store, account: int, worker: str = "w1", lease_s: float = 30) -> str:
    new = NewTask(account_id=account, model_name="gw", params={"prompt": "p"}, units=Decimal(1))
    task_id = (await store.create_task(new)).task_id
    got = await store.claim_task(worker, lease_s, ["gw"])
    assert got is not None and got.task_id == task_id
    return task_id


async def test_engine_state_is_kept_under_the_lease(store: Store) -> None:
    account = (await store.create_account("a")).account_id
    task_id = await _claimed(store, account)
    assert await store.engine_state(task_id) == {}
    state = {"phase": "submitting", "external_id": f"reelgate-{task_id}"}
    assert await store.save_engine_state(task_id, "w1", state)
    assert not await store.save_engine_state(task_id, "w2", {"phase": "stolen"})
    assert await store.engine_state(task_id) == state
    assert await store.engine_state("nope") == {}


async def test_a_deferred_task_is_submitted_again_later_with_no_attempt_spent(
    store: Store,
) -> None:
    clock = FakeClock()
    store = Store(store.engine, clock)
    account = (await store.create_account("a")).account_id
    task_id = await _claimed(store, account)
    assert not await store.defer_task(task_id, "w2", 5)
    assert await store.defer_task(task_id, "w1", 5)
    task = await store.get_task_by_id(task_id)
    assert task is not None and task.status is TaskStatus.SUBMITTED and task.attempts == 0
    assert await store.claim_task("w1", 30, ["gw"]) is None  # not before its time
    clock.advance(5.001)
    again = await store.claim_task("w1", 30, ["gw"])
    assert again is not None and again.task_id == task_id and again.attempts == 1


async def test_renew_leases_answers_per_task_in_one_call(store: Store) -> None:
    clock = FakeClock()
    store = Store(store.engine, clock)
    account = (await store.create_account("a")).account_id
    mine = [await _claimed(store, account) for _ in range(3)]
    theirs = await _claimed(store, account, "w2")
    await store.request_cancel(account, mine[1])
    assert await store.finish_task(mine[2], "w1", {"videos": []})
    clock.advance(20)
    beats = await store.renew_leases("w1", 30, {mine[0]: 40, mine[1]: 7, mine[2]: 99, theirs: 1})
    assert beats[mine[0]] is not None and beats[mine[0]].cancel_reason is None
    assert beats[mine[1]] is not None and beats[mine[1]].cancel_reason is not None
    assert beats[mine[2]] is None and beats[theirs] is None  # finished; held by another
    first = await store.get_task_by_id(mine[0])
    assert first is not None and first.progress == 40
    assert first.lease_expires_at == clock() + 30_000
    other = await store.get_task_by_id(theirs)
    assert other is not None and other.progress == 0


@pytest.mark.slow  # 510 tasks created and claimed one by one
async def test_renew_leases_of_many_tasks(store: Store) -> None:
    account = (await store.create_account("a")).account_id
    await store.set_max_concurrent_tasks(account, 0)
    ids = [await _claimed(store, account, lease_s=3600) for _ in range(510)]  # two chunks
    beats = await store.renew_leases("w1", 30, dict.fromkeys(ids, 3))
    assert len(beats) == 510 and all(b is not None for b in beats.values())


async def test_migration_0006_goes_down_and_up(store: Store) -> None:
    account = (await store.create_account("a")).account_id
    task_id = await _claimed(store, account)
    assert await store.save_engine_state(task_id, "w1", {"phase": "submitted"})
    await downgrade(store.engine, "0005")
    async with store.engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one()
    assert count == 1
    await upgrade(store.engine)
    assert await store.engine_state(task_id) == {}
