"""Callbacks arrive on time: a healthy receiver hears of each status change within moments,
also while other receivers hang (issue 8, "callbacks on time").

Real HTTP receivers on loopback, status changes driven through the real Store (SQLite and
PostgreSQL), the real dispatcher with its default poll interval and lease. Lateness is the
arrival time minus the change's ``updated_at`` (same machine, same clock).
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path

from reelgate.callbacks import CallbackDispatcher
from reelgate.callbacks.receiver import Receiver
from reelgate.domain.tasks import no_urls
from reelgate.settings import Settings
from reelgate.store import NewTask, Store

HEALTHY_TASKS = 8
HANGING_RECEIVERS = 3
# Far above the 0.5 s poll interval, far below the old 30-60 s (the 40 s lease).
LATE_S = 5.0


async def run_task(store: Store, account_id: int, url: str, pause_s: float) -> str:
    """Create, claim and finish one task, pausing between its status changes."""
    record = await store.create_task(
        NewTask(account_id, "kling-v1", {"prompt": "p"}, Decimal(1), callback_url=url)
    )
    await asyncio.sleep(pause_s)
    claimed = await store.claim_task("w1", 30)
    assert claimed is not None and claimed.task_id == record.task_id
    await asyncio.sleep(pause_s)
    assert await store.finish_task(record.task_id, "w1", {"videos": []})
    return record.task_id


async def test_healthy_receiver_hears_every_change_promptly_while_others_hang(
    store: Store, tmp_path: Path
) -> None:
    # Defaults except the attempt timeout, which only bounds how long a hang holds a slot.
    settings = Settings(data_dir=tmp_path, callback_allow_private=True, callback_timeout_s=5.0)
    account = await store.create_account(f"acct-{uuid.uuid4().hex[:8]}")
    dispatcher = CallbackDispatcher(store, settings, links=lambda base, ttl: no_urls)
    async with Receiver() as rx:
        for i in range(HANGING_RECEIVERS):
            rx.always(f"/hang{i}", "hang")
        await dispatcher.start()
        try:
            hanging = [
                await run_task(store, account.account_id, rx.url(f"/hang{i}"), 0.05)
                for i in range(HANGING_RECEIVERS)
            ]
            healthy = []
            for i in range(HEALTHY_TASKS):
                # Changes at uneven intervals, so deliveries end while the outbox is read.
                healthy.append(
                    await run_task(store, account.account_id, rx.url("/ok"), 0.03 * (i % 4))
                )
            async with asyncio.timeout(60):
                await rx.wait_for_count(3 * HEALTHY_TASKS, "/ok")
        finally:
            await dispatcher.stop()

    received = rx.to("/ok")
    seen = [(r.payload["task_id"], r.payload["task_status"]) for r in received]
    assert sorted(seen) == sorted(
        (t, s) for t in healthy for s in ("submitted", "processing", "succeed")
    )
    for task_id in healthy:  # in order per task
        statuses = [s for t, s in seen if t == task_id]
        assert statuses == ["submitted", "processing", "succeed"]
    lateness = sorted(r.wall - r.payload["updated_at"] / 1000 for r in received)
    assert lateness[-1] < LATE_S, f"late callbacks (s): {[round(x, 2) for x in lateness]}"
    # The hanging receivers were really tried, and hung: only their first event was sent.
    for i, task_id in enumerate(hanging):
        assert {r.payload["task_id"] for r in rx.to(f"/hang{i}")} == {task_id}
