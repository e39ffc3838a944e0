"""The sandbox's store tables on both backends: firings, signals, reset, fixed credentials, and
the outbox rows a callback scenario writes."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from reelgate.domain.scenarios import SCENARIO_PARAM, ControlState, Effects
from reelgate.domain.tasks import TaskStatus
from reelgate.store import NewTask, Store
from reelgate.store.sandbox import SandboxControl

from .fault_support import FakeClock


def control_of(store: Store) -> tuple[Store, SandboxControl, FakeClock]:
    clock = FakeClock()
    clocked = Store(store.engine, clock)
    return clocked, SandboxControl(store.engine, clock), clock


def task(account_id: int, callbacks: str | None = None) -> NewTask:
    params: dict[str, object] = {"prompt": "p"}
    if callbacks is not None:
        params[SCENARIO_PARAM] = Effects(name="cb", callbacks=callbacks).model_dump()  # type: ignore[arg-type]
    return NewTask(
        account_id=account_id,
        model_name="kling-v1",
        params=params,
        units=Decimal(1),
        callback_url="https://example.com/hook",
    )


async def test_firings_count_refusals_per_scenario(store: Store) -> None:
    _, control, _ = control_of(store)
    await control.record_firing("busy", 1, "refused 1303", None, "busy-1")
    await control.record_firing("busy", 1, "accepted", "123", "busy-2")
    await control.record_firing("other", 1, "refused 1301")
    assert await control.refusals("busy") == 1
    assert await control.refusals("nothing") == 0
    fired = await control.firings()
    assert [(f.scenario, f.outcome, f.task_id) for f in fired] == [
        ("busy", "refused 1303", None),
        ("busy", "accepted", "123"),
        ("other", "refused 1301", None),
    ]


async def test_times_holds_for_simultaneous_creates_on_two_replicas(store: Store) -> None:
    """``times = 3``: of 16 creates at once, through two stores on one database (two API
    replicas), exactly three are refused."""
    other = await Store.open(store.engine.url.render_as_string(hide_password=False))
    try:
        replicas = [SandboxControl(s.engine, s.clock) for s in (store, other)]
        refused = await asyncio.gather(
            *(replicas[i % 2].refuse("busy", 1, "refused 1303", f"e-{i}", 3) for i in range(16))
        )
    finally:
        await other.close()
    assert sum(refused) == 3
    assert await replicas[0].refusals("busy") == 3
    # without a limit every create is refused and recorded
    assert all([await replicas[0].refuse("always", 1, "refused 1301", None, None) for _ in "ab"])
    assert await replicas[0].refusals("always") == 2


async def test_signals_per_task_and_clock_advances_since_a_task_started(store: Store) -> None:
    _, control, clock = control_of(store)
    await control.signal(None, "advance", 100)  # before the task started: not its concern
    clock.advance(1)
    started = clock()
    assert await control.control_state("t1", started) == ControlState()
    await control.signal("t1", "advance", 5)
    await control.signal(None, "advance", 7)
    await control.signal("t2", "release")
    assert await control.control_state("t1", started) == ControlState(advanced_s=12.0)
    await control.signal("t1", "release")
    await control.signal("t1", "finish")
    state = await control.control_state("t1", started)
    assert (state.released, state.finish) == (True, True)
    assert await control.control_state("t2", started) == ControlState(released=True, advanced_s=7.0)


async def test_reset_forgets_tasks_events_firings_and_signals_but_not_keys(store: Store) -> None:
    clocked, control, _ = control_of(store)
    creds = await control.ensure_account("sandbox", "AKfixed", "s" * 32, "rg-fixed")
    assert await control.ensure_account("sandbox", "AKfixed", "s" * 32, "rg-fixed") == creds
    assert await store.account_for_api_key("rg-fixed") == creds.account_id
    assert await store.secret_for_access_key("AKfixed") == (creds.account_id, "s" * 32)
    created = await clocked.create_task(task(creds.account_id))
    await control.record_firing("x", creds.account_id, "applied", created.task_id)
    await control.signal(created.task_id, "release")
    removed = await control.reset()
    assert removed == {"callback_events": 1, "tasks": 1, "scenarios_fired": 1, "signals": 1}
    assert await store.get_task_by_id(created.task_id) is None
    assert await control.firings() == []
    assert await control.control_state(created.task_id, 0) == ControlState()
    assert await store.account_for_api_key("rg-fixed") == creds.account_id


async def _run_to_end(store: Store, task_id: str) -> None:
    claimed = await store.claim_task("w", 30)
    assert claimed is not None and claimed.task_id == task_id
    assert await store.finish_task(task_id, "w", {"videos": []})


async def _deliver_all(store: Store) -> list[str]:
    sent = []
    while events := await store.due_events():
        for event in events:
            sent.append(event.status)
            await store.mark_event(event.id, "delivered")
    return sent


async def test_callbacks_twice_writes_every_event_twice(store: Store) -> None:
    clocked, control, _ = control_of(store)
    acct = await store.create_account("a")
    created = await clocked.create_task(task(acct.account_id, "twice"))
    await _run_to_end(clocked, created.task_id)
    assert await _deliver_all(clocked) == ["submitted"] * 2 + ["processing"] * 2 + ["succeed"] * 2
    assert len(await control.sent_callbacks(created.task_id)) == 6


async def test_callbacks_out_of_order_send_processing_after_the_end(store: Store) -> None:
    clocked, control, _ = control_of(store)
    acct = await store.create_account("a")
    created = await clocked.create_task(task(acct.account_id, "out_of_order"))
    claimed = await clocked.claim_task("w", 30)
    assert claimed is not None
    assert await _deliver_all(clocked) == ["submitted"]  # processing is held back
    assert await clocked.finish_task(created.task_id, "w", {"videos": []})
    assert await _deliver_all(clocked) == ["succeed", "processing"]
    sent = await control.sent_callbacks(created.task_id)
    assert [e.status for e in sent] == ["submitted", "succeed", "processing"]
    assert sent[-1].record() is not None
    assert sent[-1].record().status is TaskStatus.PROCESSING  # type: ignore[union-attr]
