"""The outbox of task events: written with each status change, read by the callback dispatcher.

Each event records the status change itself: a snapshot of the task's wire-relevant fields
(status, message, result blob keys, units, times, external id...), never a rendered body. The
dispatcher renders and signs the callback body when it sends it, so links are fresh and no
write transaction ever calls storage. Rows written before this format hold the rendered body;
:meth:`TaskEvent.record` tells the two apart.

Only each task's oldest pending event is handed out, which keeps callbacks in order per task.
A dispatcher leases exactly the events it starts (:meth:`Outbox.lease_events`), so several
dispatchers on one database do not send the same event at once, and an event it does not
start stays due.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelgate.domain.scenarios import callback_mode
from reelgate.domain.tasks import TaskRecord, TaskStatus

from .base import StoreBase
from .db import prepared
from .tables import task_events, tasks

# Deliveries of events a sandbox scenario sends out of order: held back, then re-queued as a
# new event after the task's final one.
HELD = "held"
REQUEUED = "requeued"
# The key of a snapshot payload; a rendered body (the old format) never has it.
SNAPSHOT_KEY = "task"
# TaskRecord fields that are queue state, not part of a status change.
_QUEUE_FIELDS = (
    "attempts",
    "lease_owner",
    "lease_expires_at",
    "cancel_reason",
    "run_after",
    "started_at",
)


@dataclass(frozen=True)
class TaskEvent:
    id: int
    task_id: str
    status: str
    payload: dict[str, Any]  # {"task": snapshot}, or the rendered body of rows of old
    callback_url: str
    attempts: int
    created_at: int
    delivery: str = "pending"  # pending, delivered, dead, or none (no callback_url)
    last_error: str | None = None
    next_attempt_at: int = 0
    base_url: str | None = None  # the base URL the task was created through

    def record(self) -> TaskRecord | None:
        """The task as it was at this change; None for an old row (payload = its body)."""
        snapshot = self.payload.get(SNAPSHOT_KEY)
        if not isinstance(snapshot, dict):
            return None
        # Fields the record no longer has are dropped; fields added since take their defaults.
        known = {k: v for k, v in snapshot.items() if k in TaskRecord.__dataclass_fields__}
        return TaskRecord(**{**known, "status": TaskStatus(snapshot["status"])})


def snapshot(record: TaskRecord) -> dict[str, Any]:
    """The JSON form of a status change (the inverse of :meth:`TaskEvent.record`)."""
    data = {
        name: getattr(record, name)
        for name in record.__dataclass_fields__
        if name not in _QUEUE_FIELDS
    }
    data["status"] = record.status.value
    return data


class Outbox(StoreBase):
    def __init__(self, engine: AsyncEngine, clock: Callable[[], int]) -> None:
        super().__init__(engine, clock)
        self._event_listeners: list[Callable[[], None]] = []

    def listen_for_events(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` when this process commits a new event; returns the unsubscriber.

        A dispatcher in the same process then sends at once instead of at its next poll.
        """
        self._event_listeners.append(listener)
        return lambda: self._event_listeners.remove(listener)

    def _events_written(self, record: TaskRecord) -> None:
        """After a commit that added events of ``record``: the listeners hear of them when
        there is something to deliver (the task has a callback URL). A dispatcher woken by every
        create read the outbox as often, a third of the CPU of creates under load."""
        if not _delivered(record):
            return
        for listener in list(self._event_listeners):
            listener()

    async def due_events(
        self,
        limit: int = 50,
        lease_s: float | None = None,
        *,
        skip_tasks: Collection[str] = (),
    ) -> list[TaskEvent]:
        """Pending callback events that are due, at most one per task: the oldest.

        Delivering only each task's oldest pending event keeps callbacks in order per task.
        Tasks in ``skip_tasks`` (a dispatcher's deliveries in flight) are left out. With
        ``lease_s`` the events are also leased (:meth:`lease_events`) and only those leased
        are returned.
        """
        query = (
            select(task_events, tasks.c.base_url)
            .join(tasks, tasks.c.task_id == task_events.c.task_id)
            .where(
                task_events.c.id.in_(_oldest_pending_per_task()),
                task_events.c.next_attempt_at <= self.clock(),
            )
            .order_by(task_events.c.id)
            .limit(limit)
        )
        if skip_tasks:
            query = query.where(task_events.c.task_id.not_in(list(skip_tasks)))
        async with self._reader() as conn:
            events = [_row_to_event(r) for r in await conn.execute(query)]
        if lease_s is None or not events:
            return events
        leased = await self.lease_events([e.id for e in events], lease_s)
        return [e for e in events if e.id in leased]

    async def lease_events(self, event_ids: Sequence[int], lease_s: float) -> set[int]:
        """Lease these events for ``lease_s`` seconds; return the ids that were leased.

        Compare-and-set on each row: an event is leased only while it is still pending and
        due, so one read before its delivery was recorded, or leased by another dispatcher
        meanwhile, is not. Recording the attempt with :meth:`mark_event` replaces the lease.
        """
        if not event_ids:
            return set()
        async with self._writer() as conn:
            now = self.clock()
            rows = await conn.execute(
                update(task_events)
                .where(
                    task_events.c.id.in_(list(event_ids)),
                    task_events.c.delivery == "pending",
                    task_events.c.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + int(lease_s * 1000))
                .returning(task_events.c.id)
            )
            return {int(r.id) for r in rows}

    async def release_event(self, event_id: int) -> None:
        """Drop the lease of an event whose attempt was cut short: due again now, uncounted."""
        async with self._writer() as conn:
            await conn.execute(
                update(task_events)
                .where(task_events.c.id == event_id, task_events.c.delivery == "pending")
                .values(next_attempt_at=self.clock())
            )

    async def next_event_due_at(self) -> int | None:
        """When the next deliverable event (the oldest pending of its task) falls due."""
        async with self._reader() as conn:
            value = (
                await conn.execute(
                    select(func.min(task_events.c.next_attempt_at)).where(
                        task_events.c.id.in_(_oldest_pending_per_task())
                    )
                )
            ).scalar()
            return int(value) if value is not None else None

    async def mark_event(
        self,
        event_id: int,
        delivery: str,
        *,
        next_attempt_at: int | None = None,
        error: str | None = None,
    ) -> None:
        """Record one delivery attempt: ``delivered``, ``dead``, or ``pending`` with a retry."""
        values: dict[str, Any] = {
            "delivery": delivery,
            "attempts": task_events.c.attempts + 1,
            "last_error": error,
        }
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        async with self._writer() as conn:
            await conn.execute(
                update(task_events).where(task_events.c.id == event_id).values(**values)
            )

    async def events_for(self, task_id: str) -> list[TaskEvent]:
        async with self._reader() as conn:
            rows = await conn.execute(
                select(task_events, tasks.c.base_url)
                .join(tasks, tasks.c.task_id == task_events.c.task_id)
                .where(task_events.c.task_id == task_id)
                .order_by(task_events.c.id)
            )
            return [_row_to_event(r) for r in rows]


# built once and prepared (db.py): it is on every status change's path
_INSERT_EVENT = prepared(insert(task_events))


def _delivered(record: TaskRecord) -> bool:
    """Whether ``record``'s events are sent anywhere: the task has a callback URL."""
    return bool(record.callback_url)


def event_row(record: TaskRecord) -> dict[str, Any]:
    """The outbox row of ``record``'s status change."""
    return {
        "task_id": record.task_id,
        "status": record.status.value,
        "payload": {SNAPSHOT_KEY: snapshot(record)},
        "callback_url": record.callback_url,
        "created_at": record.updated_at,
        "delivery": "pending" if _delivered(record) else "none",
        "attempts": 0,
        "next_attempt_at": record.updated_at,
    }


def single_event(record: TaskRecord) -> bool:
    """Whether :func:`add_event` writes exactly :func:`event_row` for ``record`` (no sandbox
    scenario asks for its callbacks twice or out of order)."""
    return callback_mode(record.params) is None or not record.callback_url


async def add_event(conn: AsyncConnection, record: TaskRecord) -> None:
    """Record ``record``'s status change in the outbox (inside the change's transaction).

    A sandbox scenario may ask for its callbacks ``twice`` (each event written twice) or
    ``out_of_order`` (the ``processing`` event is held and sent after the final one).
    """
    values = event_row(record)
    mode = callback_mode(record.params) if record.callback_url else None
    if mode == "out_of_order" and record.status == TaskStatus.PROCESSING:
        values["delivery"] = HELD
    await conn.execute(_INSERT_EVENT, values)
    if mode == "twice":
        await conn.execute(_INSERT_EVENT, values)
    if mode == "out_of_order" and record.status.finished:
        held = task_events.c.task_id == record.task_id, task_events.c.delivery == HELD
        for row in await conn.execute(
            select(task_events.c.status, task_events.c.payload).where(*held)
        ):
            await conn.execute(
                insert(task_events).values(
                    **{**values, "status": row.status, "payload": row.payload}
                )
            )
        await conn.execute(update(task_events).where(*held).values(delivery=REQUEUED))


def _oldest_pending_per_task() -> Any:
    return (
        select(func.min(task_events.c.id))
        .where(task_events.c.delivery == "pending")
        .group_by(task_events.c.task_id)
        .scalar_subquery()
    )


def _row_to_event(row: Row[Any]) -> TaskEvent:
    m = row._mapping
    return TaskEvent(
        id=int(m["id"]),
        task_id=m["task_id"],
        status=m["status"],
        payload=dict(m["payload"]),
        callback_url=m["callback_url"] or "",
        attempts=int(m["attempts"]),
        created_at=int(m["created_at"]),
        delivery=m["delivery"],
        last_error=m["last_error"],
        next_attempt_at=int(m["next_attempt_at"]),
        base_url=m["base_url"],
    )
