"""What ``/metrics`` reads from the store at each scrape: tasks by status and model, the queue."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.domain.tasks import TaskStatus

from .tables import tasks


@dataclass(frozen=True)
class TaskStats:
    by_status_model: dict[tuple[str, str], int]  # (status, model) -> tasks
    oldest_submitted_at: int | None  # Unix ms of the oldest task still waiting; None: none


async def task_stats(conn: AsyncConnection) -> TaskStats:
    rows = await conn.execute(
        select(tasks.c.status, tasks.c.model_name, func.count()).group_by(
            tasks.c.status, tasks.c.model_name
        )
    )
    counts = {(str(status), str(model)): int(n) for status, model, n in rows}
    oldest = (
        await conn.execute(
            select(func.min(tasks.c.created_at)).where(tasks.c.status == TaskStatus.SUBMITTED.value)
        )
    ).scalar()
    return TaskStats(counts, int(oldest) if oldest is not None else None)
