"""The store as a queue, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from reelgate.domain.errors import ConcurrencyLimitError, InvalidParameterError, QuotaExceededError
from reelgate.domain.tasks import TaskStatus
from reelgate.store import NewTask, Store

from .fault_support import FakeClock


def clocked(store: Store) -> tuple[Store, FakeClock]:
    """The same database through a store whose clock the test moves."""
    clock = FakeClock()
    return Store(store.engine, clock), clock


def new_task(account_id: int, **kw: object) -> NewTask:
    fields: dict[str, object] = {
        "account_id": account_id,
        "model_name": "kling-v1",
        "params": {"prompt": "p"},
        "units": Decimal(1),
    }
    fields.update(kw)
    return NewTask(**fields)  # type: ignore[arg-type]


async def test_create_and_get_by_either_id(store: Store) -> None:
    acct = await store.create_account("a")
    task = await store.create_task(new_task(acct.account_id, external_task_id="mine-1"))
    assert task.status is TaskStatus.SUBMITTED and len(task.task_id) == 18
    assert (await store.get_task(acct.account_id, task.task_id)) == task
    assert (await store.get_task(acct.account_id, "mine-1")) == task
    other = await store.create_account("b")
    assert await store.get_task(other.account_id, task.task_id) is None
    assert await store.get_task(other.account_id, "mine-1") is None


async def test_duplicate_external_id_creates_nothing(store: Store) -> None:
    acct = await store.create_account("a")
    await store.create_task(new_task(acct.account_id, external_task_id="dup"))
    with pytest.raises(InvalidParameterError, match="external_task_id"):
        await store.create_task(new_task(acct.account_id, external_task_id="dup"))
    assert len(await store.list_tasks(acct.account_id, 1, 50)) == 1
    other = await store.create_account("b")  # unique per account, not globally
    await store.create_task(new_task(other.account_id, external_task_id="dup"))


async def test_list_is_newest_first_and_paged(store: Store) -> None:
    acct = await store.create_account("a")
    ids = [(await store.create_task(new_task(acct.account_id))).task_id for _ in range(7)]
    page1 = await store.list_tasks(acct.account_id, 1, 3)
    page3 = await store.list_tasks(acct.account_id, 3, 3)
    assert [t.task_id for t in page1] == ids[::-1][:3]
    assert [t.task_id for t in page3] == ids[:1]


async def test_claim_heartbeat_finish_once(store: Store) -> None:
    acct = await store.create_account("a")
    task = await store.create_task(new_task(acct.account_id, callback_url="http://cb"))
    claimed = await store.claim_task("w1", 30)
    assert claimed is not None and claimed.task_id == task.task_id
    assert claimed.status is TaskStatus.PROCESSING and claimed.attempts == 1
    assert await store.claim_task("w2", 30) is None  # leased: nobody else gets it
    assert await store.heartbeat(task.task_id, "w1", 30, progress=40)
    assert not await store.heartbeat(task.task_id, "w2", 30)
    assert (await store.get_task_by_id(task.task_id)).progress == 40  # type: ignore[union-attr]
    assert not await store.finish_task(task.task_id, "w2", {"videos": []})
    assert await store.finish_task(task.task_id, "w1", {"videos": [], "seed": 7})
    # A finished task never changes again.
    assert not await store.finish_task(task.task_id, "w1", {"videos": []})
    assert not await store.fail_task(task.task_id, None, "late")
    done = await store.get_task_by_id(task.task_id)
    assert done is not None and done.status is TaskStatus.SUCCEED and done.result["seed"] == 7
    events = await store.events_for(task.task_id)
    assert [e.status for e in events] == ["submitted", "processing", "succeed"]
    final = events[-1].record()  # the change itself; the body is rendered at delivery
    assert final is not None and final.units == "1" and final.result["seed"] == 7


async def test_expired_lease_is_reclaimed_and_first_owner_cannot_write(store: Store) -> None:
    store, clock = clocked(store)
    acct = await store.create_account("a")
    task = await store.create_task(new_task(acct.account_id))
    assert await store.claim_task("w1", 30) is not None
    clock.advance(29)
    assert await store.claim_task("w2", 30) is None  # still leased
    clock.advance(2)
    again = await store.claim_task("w2", 30)
    assert again is not None and again.task_id == task.task_id and again.attempts == 2
    assert not await store.finish_task(task.task_id, "w1", {"videos": []})
    assert await store.finish_task(task.task_id, "w2", {"videos": []})
    # reclaiming does not repeat the processing event
    statuses = [e.status for e in await store.events_for(task.task_id)]
    assert statuses == ["submitted", "processing", "succeed"]


async def test_exhausted_attempts_fail_the_task(store: Store) -> None:
    store, clock = clocked(store)
    acct = await store.create_account("a")
    task = await store.create_task(new_task(acct.account_id))
    for worker in ("w1", "w2"):
        assert await store.claim_task(worker, 1) is not None
        clock.advance(2)
    assert await store.fail_exhausted(max_attempts=2) == [task.task_id]
    failed = await store.get_task_by_id(task.task_id)
    assert failed is not None and failed.status is TaskStatus.FAILED
    assert "2 times" in failed.status_msg
    assert await store.claim_task("w3", 30) is None


async def test_claim_never_exceeds_max_attempts(store: Store) -> None:
    """Issue 8: a task was claimed 4 times with 3; the claim itself checks the count."""
    store, clock = clocked(store)
    acct = await store.create_account("a")
    task = await store.create_task(new_task(acct.account_id))
    for attempt in (1, 2, 3):
        claimed = await store.claim_task(f"w{attempt}", 5, max_attempts=3)
        assert claimed is not None and claimed.attempts == attempt
        clock.advance(6)  # the worker was killed: its lease runs out
    # The lease is lost and nobody failed the task yet (no fail_exhausted ran): racing
    # workers still cannot take a fourth attempt.
    racing = await asyncio.gather(*(store.claim_task(f"r{i}", 5, max_attempts=3) for i in range(8)))
    assert racing == [None] * 8
    row = await store.get_task_by_id(task.task_id)
    assert row is not None and row.attempts == 3 and row.status is TaskStatus.PROCESSING
    assert await store.fail_exhausted(max_attempts=3) == [task.task_id]
    failed = await store.get_task_by_id(task.task_id)
    assert failed is not None and failed.status is TaskStatus.FAILED and failed.attempts == 3
    assert "3 times" in failed.status_msg


async def test_claim_below_max_attempts_still_reclaims(store: Store) -> None:
    store, clock = clocked(store)
    acct = await store.create_account("a")
    await store.create_task(new_task(acct.account_id))
    assert await store.claim_task("w1", 5, max_attempts=2) is not None
    clock.advance(6)
    assert await store.fail_exhausted(max_attempts=2) == []  # one attempt left: not failed
    again = await store.claim_task("w2", 5, max_attempts=2)
    assert again is not None and again.attempts == 2


async def test_release_with_delay_is_claimable_only_after_it(store: Store) -> None:
    store, clock = clocked(store)
    acct = await store.create_account("a")
    task = await store.create_task(new_task(acct.account_id))
    claimed = await store.claim_task("w1", 30, max_attempts=3)
    assert claimed is not None
    assert await store.release_task(task.task_id, "w1", delay_s=60)
    assert not await store.heartbeat(task.task_id, "w1", 30)  # given back: no longer held
    released = await store.get_task_by_id(task.task_id)
    assert released is not None and released.status is TaskStatus.PROCESSING
    assert released.lease_owner is None
    clock.advance(59)
    assert await store.claim_task("w2", 30, max_attempts=3) is None
    assert await store.fail_exhausted(max_attempts=3) == []
    clock.advance(2)
    again = await store.claim_task("w2", 30, max_attempts=3)
    assert again is not None and again.task_id == task.task_id and again.attempts == 2


async def test_release_makes_task_claimable_again(store: Store) -> None:
    acct = await store.create_account("a")
    await store.create_task(new_task(acct.account_id))
    claimed = await store.claim_task("w1", 30)
    assert claimed is not None
    assert await store.release_task(claimed.task_id, "w1")
    assert (await store.claim_task("w2", 30)) is not None


async def test_claim_filters_by_model(store: Store) -> None:
    acct = await store.create_account("a")
    await store.create_task(new_task(acct.account_id, model_name="kling-v3"))
    assert await store.claim_task("w1", 30, models=["kling-v1"]) is None
    assert await store.claim_task("w1", 30, models=["kling-v3"]) is not None


async def test_concurrent_claims_hand_each_task_to_one_worker(store: Store) -> None:
    acct = await store.create_account("a")
    for _ in range(12):
        await store.create_task(new_task(acct.account_id))
    results = await asyncio.gather(*(store.claim_task(f"w{i}", 30) for i in range(20)))
    claimed = [r.task_id for r in results if r is not None]
    assert len(claimed) == 12 and len(set(claimed)) == 12


async def test_concurrency_limit_counts_unfinished_tasks(store: Store) -> None:
    acct = await store.create_account("a", max_concurrent_tasks=2)
    first = await store.create_task(new_task(acct.account_id))
    await store.create_task(new_task(acct.account_id))
    with pytest.raises(ConcurrencyLimitError):
        await store.create_task(new_task(acct.account_id))
    assert await store.claim_task("w", 30) is not None
    await store.fail_task(first.task_id, None, "boom")  # failure frees the slot
    await store.create_task(new_task(acct.account_id))
    unlimited = await store.create_account("b")
    for _ in range(3):
        await store.create_task(new_task(unlimited.account_id), default_concurrency=0)


async def test_default_concurrency_applies_to_accounts_without_their_own(store: Store) -> None:
    acct = await store.create_account("a")
    await store.create_task(new_task(acct.account_id), default_concurrency=1)
    with pytest.raises(ConcurrencyLimitError):
        await store.create_task(new_task(acct.account_id), default_concurrency=1)


async def test_racing_creates_never_pass_a_limit_or_share_an_external_id(store: Store) -> None:
    limited = await store.create_account("a", max_concurrent_tasks=3)
    made = await asyncio.gather(
        *(store.create_task(new_task(limited.account_id)) for _ in range(8)),
        return_exceptions=True,
    )
    assert sum(not isinstance(m, BaseException) for m in made) == 3
    assert all(isinstance(m, ConcurrencyLimitError) for m in made if isinstance(m, BaseException))
    free = await store.create_account("b")
    made = await asyncio.gather(
        *(store.create_task(new_task(free.account_id, external_task_id="x")) for _ in range(6)),
        return_exceptions=True,
    )
    assert sum(not isinstance(m, BaseException) for m in made) == 1
    assert all(isinstance(m, InvalidParameterError) for m in made if isinstance(m, BaseException))
    assert [t.external_task_id for t in await store.list_tasks(free.account_id, 1, 50)] == ["x"]


async def test_quota_reserves_units_and_failures_are_free(store: Store) -> None:
    acct = await store.create_account("a", unit_quota=Decimal("2.5"))
    t1 = await store.create_task(new_task(acct.account_id, units=Decimal("1.5")))
    with pytest.raises(QuotaExceededError, match="1 remain"):
        await store.create_task(new_task(acct.account_id, units=Decimal("1.5")))
    await store.fail_task(t1.task_id, None, "free")
    await store.create_task(new_task(acct.account_id, units=Decimal("2.5")))
    assert await store.units_charged(acct.account_id) == 0


async def test_outbox_hands_out_oldest_pending_event_per_task(store: Store) -> None:
    acct = await store.create_account("a")
    t1 = await store.create_task(new_task(acct.account_id, callback_url="http://a"))
    await store.create_task(new_task(acct.account_id))  # no callback: nothing to deliver
    claimed = await store.claim_task("w", 30)
    assert claimed is not None and claimed.task_id == t1.task_id
    due = await store.due_events()
    assert [(e.task_id, e.status) for e in due] == [(t1.task_id, "submitted")]
    await store.mark_event(due[0].id, "delivered")
    due = await store.due_events()
    assert [(e.task_id, e.status) for e in due] == [(t1.task_id, "processing")]
    await store.mark_event(
        due[0].id, "pending", next_attempt_at=store.clock() + 60_000, error="500"
    )
    assert await store.due_events() == []
    assert await store.next_event_due_at() is not None


async def test_credentials_lookup(store: Store) -> None:
    creds = await store.create_account("a")
    assert await store.secret_for_access_key(creds.access_key) == (
        creds.account_id,
        creds.secret_key,
    )
    assert await store.account_for_api_key(creds.api_key) == creds.account_id
    assert await store.account_for_api_key(creds.api_key + "x") is None
    more = await store.add_credentials(creds.account_id, "second")
    assert more.account_id == creds.account_id and more.api_key != creds.api_key
    with pytest.raises(LookupError):
        await store.add_credentials(9999, "nobody")


async def test_leased_events_go_to_one_dispatcher_until_recorded(store: Store) -> None:
    acct = await store.create_account("a")
    task = await store.create_task(new_task(acct.account_id, callback_url="http://a"))
    first = await store.due_events(lease_s=60)
    assert [e.task_id for e in first] == [task.task_id]
    assert await store.due_events(lease_s=60) == []  # a second dispatcher gets nothing
    await store.release_event(first[0].id)
    again = await store.due_events(lease_s=60)
    assert [e.id for e in again] == [first[0].id] and again[0].attempts == 0
    await store.mark_event(again[0].id, "delivered")
    (event,) = await store.events_for(task.task_id)
    assert event.delivery == "delivered" and event.attempts == 1


async def test_creating_a_task_wakes_waiting_workers(store: Store) -> None:
    acct = await store.create_account("a")
    assert not await store.wait_for_tasks(0.05)  # nothing happened: times out
    waiting = asyncio.create_task(store.wait_for_tasks(10))
    await asyncio.sleep(0.05)
    await store.create_task(new_task(acct.account_id))
    assert await waiting  # woken, not timed out


@pytest.mark.postgres
async def test_postgres_notify_wakes_workers_in_other_processes(postgres_url: str) -> None:
    api, worker = await Store.open(postgres_url), await Store.open(postgres_url, migrate=False)
    try:
        acct = await api.create_account("a")
        assert not await worker.wait_for_tasks(0.2)  # opens the LISTEN connection
        waiting = asyncio.create_task(worker.wait_for_tasks(10))
        await asyncio.sleep(0.05)
        await api.create_task(new_task(acct.account_id))
        assert await waiting  # woken by NOTIFY, not by the timeout
    finally:
        await worker.close()
        await api.close()


async def test_event_listeners_hear_only_of_events_to_deliver(store: Store) -> None:
    """A dispatcher is woken by events with somewhere to go, not by every status change."""
    acct = await store.create_account("a")
    heard: list[int] = []
    unlisten = store.listen_for_events(lambda: heard.append(1))
    try:
        quiet = await store.create_task(new_task(acct.account_id))
        assert heard == []
        loud = await store.create_task(new_task(acct.account_id, callback_url="http://x.test/h"))
        assert len(heard) == 1  # submitted
        for _ in range(2):
            claimed = await store.claim_task("w", 60)
            assert claimed is not None
            assert await store.finish_task(claimed.task_id, "w", {"videos": []})
        assert len(heard) == 3  # and the loud one's processing and succeed, none of quiet's
        assert len(await store.events_for(quiet.task_id)) == 3  # written all the same
        assert len(await store.events_for(loud.task_id)) == 3
    finally:
        unlisten()
