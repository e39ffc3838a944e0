"""The outbox of task events: written with each status change, read by the callback dispatcher.

Each event holds the flat callback body as it was at the change. Only each task's oldest pending
event is handed out, which keeps callbacks in order per task; handing events out can lease them,
so several dispatchers on one database do not send the same event at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.domain.tasks import Signer, TaskRecord, callback_body

from .base import StoreBase
from .db import is_sqlite
from .tables import task_events


@dataclass(frozen=True)
class TaskEvent:
    id: int
    task_id: str
    status: str
    payload: dict[str, Any]
    callback_url: str
    attempts: int
    created_at: int
    delivery: str = "pending"  # pending, delivered, dead, or none (no callback_url)
    last_error: str | None = None
    next_attempt_at: int = 0


class Outbox(StoreBase):
    async def due_events(self, limit: int = 50, lease_s: float | None = None) -> list[TaskEvent]:
        """Pending callback events that are due, at most one per task: the oldest.

        Delivering only each task's oldest pending event keeps callbacks in order per task.
        With ``lease_s`` the events are also leased: their next attempt moves ``lease_s`` ahead,
        so another dispatcher on the same store does not send them meanwhile; recording the
        attempt with :meth:`mark_event` replaces the lease.
        """
        now = self.clock()
        query = (
            select(task_events)
            .where(
                task_events.c.id.in_(_oldest_pending_per_task()),
                task_events.c.next_attempt_at <= now,
            )
            .order_by(task_events.c.id)
            .limit(limit)
        )
        if lease_s is None:
            async with self._reader() as conn:
                return [_row_to_event(r) for r in await conn.execute(query)]
        if not is_sqlite(self.engine):
            query = query.with_for_update(skip_locked=True)
        async with self._writer() as conn:
            events = [_row_to_event(r) for r in await conn.execute(query)]
            if events:
                await conn.execute(
                    update(task_events)
                    .where(task_events.c.id.in_([e.id for e in events]))
                    .values(next_attempt_at=now + int(lease_s * 1000))
                )
            return events

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
                select(task_events)
                .where(task_events.c.task_id == task_id)
                .order_by(task_events.c.id)
            )
            return [_row_to_event(r) for r in rows]


async def add_event(conn: AsyncConnection, record: TaskRecord, sign: Signer) -> None:
    """Record ``record``'s current status in the outbox (inside the change's transaction)."""
    await conn.execute(
        insert(task_events).values(
            task_id=record.task_id,
            status=record.status.value,
            payload=callback_body(record, sign),
            callback_url=record.callback_url,
            created_at=record.updated_at,
            delivery="pending" if record.callback_url else "none",
            attempts=0,
            next_attempt_at=record.updated_at,
        )
    )


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
    )
