"""The sandbox's own state: scenarios that fired and control signals for running tasks.

The API writes both (a create that matched a scenario, a ``/_sandbox`` call); the sandbox
engine, in whichever process runs the task, reads the signals through
:meth:`SandboxControl.control_state`. Going through the store is what lets a release reach a
worker in another process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    delete,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.domain.scenarios import ControlState

from . import accounts as acct
from .accounts import Credentials
from .base import StoreBase
from .outbox import TaskEvent, _row_to_event
from .tables import (
    access_keys,
    sandbox_fired,
    sandbox_signals,
    task_events,
    tasks,
)

SIGNALS = ("release", "finish", "advance")


@dataclass(frozen=True)
class Firing:
    id: int
    scenario: str
    account_id: int
    task_id: str | None
    external_task_id: str | None
    outcome: str
    created_at: int


class SandboxControl(StoreBase):
    """``SandboxControl(store.engine, store.clock)``: the sandbox tables of one store."""

    async def record_firing(
        self,
        scenario: str,
        account_id: int,
        outcome: str,
        task_id: str | None = None,
        external_task_id: str | None = None,
    ) -> None:
        async with self._writer() as conn:
            await self._insert_firing(
                conn, scenario, account_id, outcome, task_id, external_task_id
            )

    async def refuse(
        self,
        scenario: str,
        account_id: int,
        outcome: str,
        external_task_id: str | None,
        times: int | None,
    ) -> bool:
        """Record that ``scenario`` refuses a create, unless it refused ``times`` creates since
        the last reset already (None: no limit). Count and record are one step for every API
        replica on the store: simultaneous creates never get more than ``times`` refusals."""
        async with self._writer() as conn:
            if times is not None:
                if conn.dialect.name == "postgresql":  # SQLite's writers are serialised already
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                        {"key": f"reelgate-sandbox-refusals:{scenario}"},
                    )
                if await self._refusals(conn, scenario) >= times:
                    return False
            await self._insert_firing(conn, scenario, account_id, outcome, None, external_task_id)
            return True

    async def _insert_firing(
        self,
        conn: AsyncConnection,
        scenario: str,
        account_id: int,
        outcome: str,
        task_id: str | None,
        external_task_id: str | None,
    ) -> None:
        await conn.execute(
            insert(sandbox_fired).values(
                scenario=scenario,
                account_id=account_id,
                task_id=task_id,
                external_task_id=external_task_id,
                outcome=outcome,
                created_at=self.clock(),
            )
        )

    async def refusals(self, scenario: str) -> int:
        """How many creates ``scenario`` has refused since the last reset."""
        async with self._reader() as conn:
            return await self._refusals(conn, scenario)

    @staticmethod
    async def _refusals(conn: AsyncConnection, scenario: str) -> int:
        value = (
            await conn.execute(
                select(func.count())
                .select_from(sandbox_fired)
                .where(
                    sandbox_fired.c.scenario == scenario,
                    sandbox_fired.c.outcome.like("refused%"),
                )
            )
        ).scalar_one()
        return int(value)

    async def firings(self, limit: int = 500) -> list[Firing]:
        """Scenarios that fired, oldest first."""
        async with self._reader() as conn:
            rows = await conn.execute(
                select(sandbox_fired).order_by(sandbox_fired.c.id).limit(limit)
            )
            return [Firing(**dict(row._mapping)) for row in rows]

    async def signal(self, task_id: str | None, kind: str, seconds: float = 0.0) -> None:
        """Record a signal for one task (or, with ``task_id`` None, an advance for all)."""
        if kind not in SIGNALS:
            raise ValueError(f"unknown signal {kind!r} (known: {', '.join(SIGNALS)})")
        async with self._writer() as conn:
            await conn.execute(
                insert(sandbox_signals).values(
                    task_id=task_id, kind=kind, seconds=seconds, created_at=self.clock()
                )
            )

    async def control_state(self, task_id: str, since_ms: int) -> ControlState:
        """The signals for ``task_id``, with clock advances for every task since ``since_ms``."""
        async with self._reader() as conn:
            rows = await conn.execute(
                select(sandbox_signals.c.kind, sandbox_signals.c.seconds).where(
                    or_(
                        sandbox_signals.c.task_id == task_id,
                        (sandbox_signals.c.task_id.is_(None))
                        & (sandbox_signals.c.created_at >= since_ms),
                    )
                )
            )
            kinds = [(r.kind, float(r.seconds)) for r in rows]
        return ControlState(
            released=any(k == "release" for k, _ in kinds),
            finish=any(k == "finish" for k, _ in kinds),
            advanced_s=sum(s for k, s in kinds if k == "advance"),
        )

    async def sent_callbacks(self, task_id: str | None = None) -> list[TaskEvent]:
        """Outbox events with at least one delivery attempt, in the order they were written."""
        query = (
            select(task_events, tasks.c.base_url)
            .join(tasks, tasks.c.task_id == task_events.c.task_id)
            .where(task_events.c.attempts > 0)
            .order_by(task_events.c.id)
        )
        if task_id is not None:
            query = query.where(task_events.c.task_id == task_id)
        async with self._reader() as conn:
            return [_row_to_event(r) for r in await conn.execute(query)]

    async def reset(self) -> dict[str, int]:
        """Forget every task, callback event, firing and signal; accounts and keys stay."""
        async with self._writer() as conn:
            counts = {}
            for name, table in (
                ("callback_events", task_events),
                ("tasks", tasks),
                ("scenarios_fired", sandbox_fired),
                ("signals", sandbox_signals),
            ):
                result = await conn.execute(delete(table))
                counts[name] = int(result.rowcount or 0)
            return counts

    async def ensure_account(
        self, name: str, access_key: str, secret_key: str, api_key: str
    ) -> Credentials:
        """An account holding exactly these credentials (the sandbox's fixed ones)."""
        async with self._writer() as conn:
            found = (
                await conn.execute(
                    select(access_keys.c.account_id).where(access_keys.c.access_key == access_key)
                )
            ).first()
            now = self.clock()
            if found is not None:
                return Credentials(int(found.account_id), access_key, secret_key, api_key)
            account_id = await acct.insert_account(conn, name, now, None, None)
            given = (access_key, secret_key, api_key)
            return await acct.insert_credentials(conn, account_id, name, now, given)


__all__: Sequence[str] = ["Firing", "SandboxControl", "sandbox_fired", "sandbox_signals"]
