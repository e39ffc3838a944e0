"""The task store, which is also the queue.

Every persistence operation is one named method, atomic on its own. Status changes are
compare-and-set: a finished task never changes again, and a worker that lost its lease cannot
write a result. Each status change writes an outbox event in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelgate.domain.errors import (
    ConcurrencyLimitError,
    InvalidParameterError,
    QuotaExceededError,
)
from reelgate.domain.ids import new_task_id, now_ms, reseed_task_ids
from reelgate.domain.models import format_units
from reelgate.domain.tasks import (
    CANCEL_REQUESTED,
    CANCELLED_BY_CLIENT,
    TaskRecord,
    TaskStatus,
)

from . import accounts as acct
from . import ratelimits as rates
from .accounts import Account, Credentials, TtlCache
from .db import StatementWriter, create_engine, dispose, is_sqlite, prepared, statement_writer
from .migrate import upgrade
from .outbox import Outbox, TaskEvent, add_event, event_row, single_event
from .ratelimits import RateDecision
from .stats import TaskStats, task_stats
from .tables import access_keys, accounts, api_keys, task_events, tasks
from .wakeup import NOTIFY, TaskWakeup

UNFINISHED = (TaskStatus.SUBMITTED.value, TaskStatus.PROCESSING.value)
RENEW_CHUNK = 500  # tasks per statement of renew_leases (SQLite bounds its parameters)


@dataclass(frozen=True)
class NewTask:
    account_id: int
    model_name: str
    params: dict[str, Any]
    units: Decimal  # price, charged on success
    external_task_id: str | None = None
    callback_url: str | None = None
    watermark: bool = False
    base_url: str | None = None  # the URL the request came through: links in callbacks
    submitted_s: float = 0.0  # time the task stays ``submitted`` before it may be claimed


@dataclass(frozen=True)
class Heartbeat:
    """A renewed lease; ``cancel_reason``: the task was asked to stop (end it with that);
    ``pokes``: upstream callbacks received so far (a change: poll the upstream now)."""

    cancel_reason: str | None = None
    pokes: int = 0


class Store(Outbox):
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], int] = now_ms,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``monotonic`` times how long credentials found in the store are believed."""
        super().__init__(engine, clock)
        self._wakeup = TaskWakeup(engine.url)
        # "ak:<access key>" -> (account, secret key); "api:<key hash>" -> (account, None)
        self._credentials: TtlCache[str, tuple[int, str | None]] = TtlCache(monotonic)
        # account -> (its rate_limit column,); None in it: the server default
        self._rate_limits: TtlCache[int, tuple[int | None]] = TtlCache(monotonic)
        # accounts whose creates count their tasks (a limit or a quota): no one-statement create
        self._counts_tasks: TtlCache[int, bool] = TtlCache(monotonic)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        engine = create_engine(url)
        if migrate:
            await upgrade(engine)
        return cls(engine)

    async def close(self) -> None:
        await self._wakeup.close()
        await dispose(self.engine)

    async def ping(self) -> None:
        async with self._reader() as conn:
            await conn.execute(text("SELECT 1"))

    # -- accounts ---------------------------------------------------------------------------

    async def create_account(
        self,
        name: str,
        *,
        max_concurrent_tasks: int | None = None,
        unit_quota: Decimal | None = None,
        rate_limit: int | None = None,
    ) -> Credentials:
        """A new account with one AK/SK pair and one API key."""
        async with self._writer() as conn:
            now = self.clock()
            account_id = await acct.insert_account(
                conn, name, now, max_concurrent_tasks, unit_quota, rate_limit
            )
            return await acct.insert_credentials(conn, account_id, name, now)

    async def add_credentials(self, account_id: int, name: str) -> Credentials:
        async with self._writer() as conn:
            if await self._account_row(conn, account_id) is None:
                raise LookupError(f"account {account_id} does not exist")
            return await acct.insert_credentials(conn, account_id, name, self.clock())

    async def set_max_concurrent_tasks(self, account_id: int, limit: int | None) -> None:
        """Change an account's limit of unfinished tasks (0: unlimited, None: server default)."""
        async with self._writer() as conn:
            if not await acct.update_max_concurrent_tasks(conn, account_id, limit):
                raise LookupError(f"account {account_id} does not exist")

    async def set_rate_limit(self, account_id: int, limit: int | None) -> None:
        """Change an account's requests per minute per key (0: unlimited, None: server default)."""
        async with self._writer() as conn:
            if not await acct.update_rate_limit(conn, account_id, limit):
                raise LookupError(f"account {account_id} does not exist")
        self._rate_limits.forget(account_id)

    async def revoke_key(self, key: str) -> bool:
        """Remove an API key (given in full) or an access key with its secret; False if unknown.

        This process refuses it at once; other processes within ``CREDENTIAL_TTL_S``."""
        async with self._writer() as conn:
            removed = await acct.delete_credential(conn, key)
        self._credentials.forget(f"ak:{key}")
        self._credentials.forget(f"api:{acct.hash_api_key(key)}")
        return removed

    async def count_request(self, key: str, account_id: int, default: int) -> RateDecision | None:
        """Count a request of ``key`` against its account's rate; None when it has no limit."""
        found = self._rate_limits.get(account_id)
        if found is None:
            async with self._lookup() as conn:
                found = (await rates.account_rate_limit_column(conn, account_id),)
            self._rate_limits.put(account_id, found)
        limit = default if found[0] is None else found[0]
        if limit <= 0:
            return None
        async with self._writer() as conn:
            count, retry_after_s = await rates.count_request(conn, key, self.clock())
        return RateDecision(count, limit, retry_after_s)

    async def get_account(self, account_id: int) -> Account | None:
        async with self._reader() as conn:
            row = await self._account_row(conn, account_id)
            return acct.row_to_account(row) if row is not None else None

    async def count_accounts(self) -> int:
        async with self._reader() as conn:
            return await acct.count_accounts(conn)

    async def secret_for_access_key(self, access_key: str) -> tuple[int, str] | None:
        """The account and secret key of ``access_key`` (remembered for a few seconds)."""
        cache_key = f"ak:{access_key}"
        found = self._credentials.get(cache_key)
        if found is not None and found[1] is not None:
            return found[0], found[1]
        async with self._lookup() as conn:
            row = (await conn.execute(_SECRET_KEY, {"access_key": access_key})).first()
        if row is None:
            return None
        self._credentials.put(cache_key, (int(row.account_id), row.secret_key))
        return int(row.account_id), row.secret_key

    async def account_for_api_key(self, api_key: str) -> int | None:
        """The account of ``api_key`` (remembered for a few seconds)."""
        key_hash = acct.hash_api_key(api_key)
        found = self._credentials.get(f"api:{key_hash}")
        if found is not None:
            return found[0]
        async with self._lookup() as conn:
            value = (await conn.execute(_API_KEY_ACCOUNT, {"key_hash": key_hash})).scalar()
        if value is None:
            return None
        self._credentials.put(f"api:{key_hash}", (int(value), None))
        return int(value)

    async def units_charged(self, account_id: int) -> Decimal:
        async with self._reader() as conn:
            rows = await conn.execute(
                select(tasks.c.units).where(
                    tasks.c.account_id == account_id, tasks.c.status == TaskStatus.SUCCEED.value
                )
            )
            return sum((Decimal(u) for (u,) in rows), Decimal(0))

    async def task_stats(self) -> TaskStats:
        """Tasks by status and model, and the oldest waiting one (for ``/metrics``)."""
        async with self._reader() as conn:
            return await task_stats(conn)

    # -- tasks ------------------------------------------------------------------------------

    async def create_task(self, new: NewTask, *, default_concurrency: int = 0) -> TaskRecord:
        """Insert a claimable task and its ``submitted`` event, or raise without creating one.

        Raises InvalidParameterError (duplicate external_task_id), ConcurrencyLimitError and
        QuotaExceededError. Creates of an account with a concurrency limit or a unit quota are
        serialized by locking its row (they count its tasks); others run side by side, and the
        unique index on (account_id, external_task_id) settles a race for an external id.
        """
        for _ in range(5):
            try:
                record = await self._create_task_once(new, default_concurrency)
            except IntegrityError:
                # A task id collided, or a concurrent create took the external id meanwhile:
                # the next try tells them apart (it finds that external id taken).
                reseed_task_ids()
                continue
            self._wakeup.notify_here()
            self._events_written(record)
            return record
        raise RuntimeError("could not allocate a unique task id")

    async def _create_task_once(self, new: NewTask, default_concurrency: int) -> TaskRecord:
        now = self.clock()
        record = TaskRecord(
            task_id=new_task_id(),
            account_id=new.account_id,
            model_name=new.model_name,
            params=new.params,
            status=TaskStatus.SUBMITTED,
            created_at=now,
            updated_at=now,
            external_task_id=new.external_task_id,
            callback_url=new.callback_url,
            watermark=new.watermark,
            units=str(new.units),
            run_after=now + int(new.submitted_s * 1000) if new.submitted_s > 0 else 0,
        )
        row = _task_row(record, new.base_url)
        writer = statement_writer(self.engine)
        if (
            writer is not None
            and single_event(record)
            and self._counts_tasks.get(new.account_id) is None
            and await self._create_in_one_statement(writer, record, row, default_concurrency)
        ):
            return record
        async with self._writer() as conn:
            account = await self._account_for_create(conn, new.account_id, default_concurrency)
            if new.external_task_id is not None:
                taken = await conn.execute(
                    select(tasks.c.task_id).where(
                        tasks.c.account_id == new.account_id,
                        tasks.c.external_task_id == new.external_task_id,
                    )
                )
                if taken.first() is not None:
                    raise InvalidParameterError(
                        f"external_task_id: {new.external_task_id!r} is already used by"
                        " another task of this account"
                    )
            limit = account.max_concurrent_tasks
            if limit is None:
                limit = default_concurrency
            if limit > 0:
                active = await conn.execute(
                    select(func.count())
                    .select_from(tasks)
                    .where(tasks.c.account_id == new.account_id, tasks.c.status.in_(UNFINISHED))
                )
                if active.scalar_one() >= limit:
                    raise ConcurrencyLimitError()
            if account.unit_quota is not None:
                committed = await self._units_committed(conn, new.account_id)
                if committed + new.units > account.unit_quota:
                    raise QuotaExceededError(
                        f"resource pack depleted: this task needs {format_units(new.units)}"
                        f" units, {format_units(max(account.unit_quota - committed, Decimal(0)))}"
                        " remain"
                    )
            await conn.execute(_INSERT_TASK, row)
            await add_event(conn, record)
            await self._wakeup.notify_in(conn)
            return record

    async def _create_in_one_statement(
        self, writer: StatementWriter, record: TaskRecord, row: dict[str, Any], default: int
    ) -> bool:
        """PostgreSQL: ``record`` created in one statement (:data:`_CREATE_UNLIMITED`: one
        round trip instead of six), when its account has no limit to count its tasks against.
        False when that statement wrote nothing (the account has a limit, remembered for a few
        seconds so its next creates go straight to the transaction, or it does not exist; or
        its external id or the task id is taken): the transaction path then decides."""
        values = {**row, **_event_values(record), "default_concurrency": default}
        try:
            if (await writer.write(_CREATE_UNLIMITED, values)).first() is not None:
                return True
            self._counts_tasks.put(record.account_id, True)
            return False
        except IntegrityError:
            return False
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        # The connection was lost (a server restart): the statement may have committed. Once
        # more on a new connection; had it committed, the task id is taken now, by this task.
        try:
            return (await writer.write(_CREATE_UNLIMITED, values)).first() is not None
        except IntegrityError:
            found = await self.get_task_by_id(record.task_id)
            mine = (record.account_id, record.created_at)
            return found is not None and (found.account_id, found.created_at) == mine

    async def get_task(self, account_id: int, task_or_external_id: str) -> TaskRecord | None:
        """The caller's task by ``task_id``, else by ``external_task_id``."""
        values = {"account_id": account_id, "ident": task_or_external_id}
        async with self._lookup() as conn:
            for query in (_TASK_BY_ID, _TASK_BY_EXTERNAL_ID):
                row = (await conn.execute(query, values)).first()
                if row is not None:
                    return _row_to_task(row)
            return None

    async def has_task(self, account_id: int, task_id: str) -> bool:
        """Whether ``task_id`` is one of the account's tasks (one index probe, no row read)."""
        values = {"account_id": account_id, "ident": task_id}
        async with self._lookup() as conn:
            return (await conn.execute(_TASK_ID_BY_ID, values)).first() is not None

    async def get_task_by_id(self, task_id: str) -> TaskRecord | None:
        async with self._lookup() as conn:
            row = (await conn.execute(select(tasks).where(tasks.c.task_id == task_id))).first()
            return _row_to_task(row) if row is not None else None

    async def list_tasks(self, account_id: int, page: int, page_size: int) -> list[TaskRecord]:
        """A page of the account's tasks, newest first."""
        async with self._lookup() as conn:
            rows = await conn.execute(_TASK_PAGE, _page(account_id, page, page_size))
            return [_row_to_task(row) for row in rows]

    async def list_task_ids(self, account_id: int, page: int, page_size: int) -> list[str]:
        """The task ids of :meth:`list_tasks`' page, without reading the rows."""
        async with self._lookup() as conn:
            rows = await conn.execute(_TASK_PAGE_IDS, _page(account_id, page, page_size))
            return [row.task_id for row in rows]

    # -- the queue --------------------------------------------------------------------------

    async def wait_for_tasks(self, seconds: float) -> bool:
        """Return early when a task may have become claimable; True when woken, not timed out."""
        return await self._wakeup.wait(seconds)

    async def claim_task(
        self,
        worker_id: str,
        lease_s: float,
        models: Collection[str] | None = None,
        *,
        max_attempts: int | None = None,
    ) -> TaskRecord | None:
        """Lease the oldest claimable task: ``submitted`` (once its ``run_after`` has come), or
        ``processing`` with a lost lease and no cancel request (``fail_abandoned`` ends those).

        With ``max_attempts``, a task already claimed that many times is never claimed again
        (``fail_exhausted`` ends it): the count is checked by the claim itself, in the same
        statement that increments it, so racing workers cannot claim one task too often.
        """
        async with self._writer() as conn:
            now = self.clock()
            claimable = or_(
                and_(
                    tasks.c.status == TaskStatus.SUBMITTED.value,
                    tasks.c.run_after <= now,
                ),
                and_(
                    tasks.c.status == TaskStatus.PROCESSING.value,
                    tasks.c.lease_expires_at < now,
                    tasks.c.cancel_reason.is_(None),
                ),
            )
            if max_attempts is not None:
                claimable = and_(claimable, tasks.c.attempts < max_attempts)
            query = select(tasks.c.task_id, tasks.c.status, tasks.c.started_at).where(claimable)
            if models is not None:
                query = query.where(tasks.c.model_name.in_(list(models)))
            query = query.order_by(tasks.c.created_at).limit(1)
            if not is_sqlite(self.engine):
                query = query.with_for_update(skip_locked=True)
            found = (await conn.execute(query)).first()
            if found is None:
                return None
            row = (
                await conn.execute(
                    update(tasks)
                    .where(tasks.c.task_id == found.task_id, claimable)
                    .values(
                        status=TaskStatus.PROCESSING.value,
                        lease_owner=worker_id,
                        lease_expires_at=now + int(lease_s * 1000),
                        attempts=tasks.c.attempts + 1,
                        updated_at=now,
                        started_at=func.coalesce(tasks.c.started_at, now),
                    )
                    .returning(*tasks.c)
                )
            ).first()
            if row is None:
                return None
            record = _row_to_task(row)
            # a deferred task (defer_task) was processing before: the client saw that already
            wrote_event = found.status == TaskStatus.SUBMITTED.value and found.started_at is None
            if wrote_event:
                await add_event(conn, record)
        if wrote_event:
            self._events_written(record)
        return record

    async def heartbeat(
        self, task_id: str, worker_id: str, lease_s: float, progress: int | None = None
    ) -> Heartbeat | None:
        """Extend the lease (and store progress). None: the lease is lost, stop working.

        The answer carries the task's cancel request, so the worker holding a task learns of
        it within one heartbeat.
        """
        values: dict[str, Any] = {"lease_expires_at": self.clock() + int(lease_s * 1000)}
        if progress is not None:
            values["progress"] = max(0, min(100, int(progress)))
        async with self._writer() as conn:
            row = (
                await conn.execute(
                    update(tasks)
                    .where(*self._held(task_id, worker_id))
                    .values(**values)
                    .returning(tasks.c.cancel_reason)
                )
            ).first()
            return Heartbeat(row.cancel_reason) if row is not None else None

    async def request_cancel(
        self, account_id: int, task_or_external_id: str, reason: str = CANCELLED_BY_CLIENT
    ) -> TaskRecord | None:
        """Ask the caller's task to stop; the task as it is afterwards (None: no such task).

        Nobody works on a ``submitted`` task, nor on a ``processing`` one whose lease is gone:
        it ends ``failed`` with ``reason`` at once (with its event, so its callback). A leased
        one is marked: its worker reads the mark with its next heartbeat and ends it. A task
        already marked, or finished, is returned unchanged (the caller decides what that
        means). Every write is a compare-and-set against a racing claim or end.
        """
        for _ in range(5):
            task = await self.get_task(account_id, task_or_external_id)
            if task is None or task.status.finished or task.cancelling:
                return task
            now = self.clock()
            unowned = task.status is TaskStatus.SUBMITTED or (
                task.lease_owner is None or (task.lease_expires_at or 0) < now
            )
            if unowned:
                where = [tasks.c.task_id == task.task_id, tasks.c.status == task.status.value]
                if task.status is TaskStatus.PROCESSING:
                    where.append(or_(tasks.c.lease_owner.is_(None), tasks.c.lease_expires_at < now))
                values = {"status_msg": reason[:2000], "cancel_reason": reason[:2000]}
                if await self._end(where, TaskStatus.FAILED, values):
                    return await self.get_task_by_id(task.task_id)
                continue  # claimed or ended meanwhile: look again
            async with self._writer() as conn:
                result = await conn.execute(
                    update(tasks)
                    .where(*self._held(task.task_id, None), tasks.c.cancel_reason.is_(None))
                    .values(cancel_reason=reason[:2000], status_msg=CANCEL_REQUESTED)
                )
            if result.rowcount == 1:
                return await self.get_task_by_id(task.task_id)
        return await self.get_task(account_id, task_or_external_id)

    async def fail_abandoned(self) -> list[str]:
        """End, as ``failed`` with their cancel reason, tasks asked to stop whose worker is gone
        (lease expired) or that were given back; return their ids. They are never reclaimed."""
        now = self.clock()
        gone = or_(tasks.c.lease_owner.is_(None), tasks.c.lease_expires_at < now)
        async with self._reader() as conn:
            rows = await conn.execute(
                select(tasks.c.task_id, tasks.c.cancel_reason).where(
                    tasks.c.status == TaskStatus.PROCESSING.value,
                    tasks.c.cancel_reason.is_not(None),
                    gone,
                )
            )
            found = [(r.task_id, r.cancel_reason) for r in rows]
        ended = []
        for task_id, reason in found:
            where = [*self._held(task_id, None), tasks.c.cancel_reason.is_not(None), gone]
            if await self._end(where, TaskStatus.FAILED, {"status_msg": reason}):
                ended.append(task_id)
        return ended

    async def finish_task(
        self,
        task_id: str,
        worker_id: str,
        result: dict[str, Any],
        *,
        units: str | None = None,
    ) -> bool:
        """``processing`` → ``succeed`` with its result, once. False when the lease was lost.

        A cancel request that lost the race to the result is cleared from the message."""
        values: dict[str, Any] = {"result": result, "progress": 100, "status_msg": ""}
        if units is not None:
            values["units"] = units
        return await self._end(self._held(task_id, worker_id), TaskStatus.SUCCEED, values)

    async def fail_task(self, task_id: str, worker_id: str | None, message: str) -> bool:
        """End a task as ``failed`` (free). ``worker_id`` None: whoever holds it, or nobody yet."""
        where = (
            self._held(task_id, worker_id)
            if worker_id is not None
            else [tasks.c.task_id == task_id, tasks.c.status.in_(UNFINISHED)]
        )
        values = {"status_msg": message[:2000]}
        return await self._end(where, TaskStatus.FAILED, values)

    async def release_task(self, task_id: str, worker_id: str, delay_s: float = 0) -> bool:
        """Give a held task back: claimable again at once, or after ``delay_s`` (a retry).

        The task stays ``processing`` with no owner; the next claim counts another attempt.
        """
        due = self.clock() + int(delay_s * 1000) if delay_s > 0 else 0
        async with self._writer() as conn:
            result = await conn.execute(
                update(tasks)
                .where(*self._held(task_id, worker_id))
                .values(lease_owner=None, lease_expires_at=due)
            )
            if result.rowcount != 1:
                return False
            if due == 0:
                await self._wakeup.notify_in(conn)
        if due == 0:
            self._wakeup.notify_here()
        return True

    async def fail_exhausted(self, max_attempts: int) -> list[str]:
        """Fail tasks whose lease expired after ``max_attempts`` claims; return their ids."""
        now = self.clock()
        async with self._reader() as conn:
            rows = await conn.execute(
                select(tasks.c.task_id).where(
                    tasks.c.status == TaskStatus.PROCESSING.value,
                    tasks.c.lease_expires_at < now,
                    tasks.c.attempts >= max_attempts,
                )
            )
            ids = [r.task_id for r in rows]
        failed = []
        for task_id in ids:
            message = f"worker lost the task {max_attempts} times; giving up"
            still_lost = [*self._held(task_id, None), tasks.c.lease_expires_at < now]
            if await self._end(still_lost, TaskStatus.FAILED, {"status_msg": message}):
                failed.append(task_id)
        return failed

    def _held(self, task_id: str, worker_id: str | None) -> list[Any]:
        conds = [tasks.c.task_id == task_id, tasks.c.status == TaskStatus.PROCESSING.value]
        if worker_id is not None:
            conds.append(tasks.c.lease_owner == worker_id)
        return conds

    async def _end(self, where: list[Any], status: TaskStatus, values: dict[str, Any]) -> bool:
        """Compare-and-set the task matching ``where`` to a final status, with its event."""
        async with self._writer() as conn:
            row = (
                await conn.execute(
                    update(tasks)
                    .where(*where)
                    .values(
                        status=status.value,
                        lease_owner=None,
                        lease_expires_at=None,
                        updated_at=self.clock(),
                        **values,
                    )
                    .returning(*tasks.c)
                )
            ).first()
            if row is None:
                return False
            record = _row_to_task(row)
            await add_event(conn, record)
        self._events_written(record)
        return True

    async def renew_leases(
        self, worker_id: str, lease_s: float, progress: Mapping[str, int]
    ) -> dict[str, Heartbeat | None]:
        """:meth:`heartbeat` for every task ``worker_id`` holds, in one write per
        ``RENEW_CHUNK`` tasks: ``progress`` maps each task to its progress; the answer maps
        each to its :class:`Heartbeat`, or None where the lease is lost."""
        answers: dict[str, Heartbeat | None] = dict.fromkeys(progress)
        expires = self.clock() + int(lease_s * 1000)
        ids = list(progress)
        for start in range(0, len(ids), RENEW_CHUNK):
            chunk = ids[start : start + RENEW_CHUNK]
            percent = case(
                {task_id: max(0, min(100, int(progress[task_id]))) for task_id in chunk},
                value=tasks.c.task_id,
                else_=tasks.c.progress,
            )
            async with self._writer() as conn:
                rows = await conn.execute(
                    update(tasks)
                    .where(
                        tasks.c.task_id.in_(chunk),
                        tasks.c.status == TaskStatus.PROCESSING.value,
                        tasks.c.lease_owner == worker_id,
                    )
                    .values(lease_expires_at=expires, progress=percent)
                    .returning(tasks.c.task_id, tasks.c.cancel_reason, tasks.c.pokes)
                )
                for row in rows:
                    answers[row.task_id] = Heartbeat(row.cancel_reason, int(row.pokes or 0))
        return answers

    async def poke_task(self, task_id: str) -> bool:
        """Count an upstream callback for a running task (its worker sees the count change
        with its next heartbeat and polls the upstream). False: no such running task."""
        async with self._writer() as conn:
            result = await conn.execute(
                update(tasks)
                .where(tasks.c.task_id == task_id, tasks.c.status.in_(UNFINISHED))
                .values(pokes=tasks.c.pokes + 1)
            )
        return bool(result.rowcount == 1)

    # -- engine state (Job.state / Job.checkpoint) ----------------------------------------

    async def engine_state(self, task_id: str) -> dict[str, Any]:
        """What the task's engine saved with :meth:`save_engine_state` (``{}``: nothing)."""
        async with self._reader() as conn:
            row = (
                await conn.execute(select(tasks.c.engine_state).where(tasks.c.task_id == task_id))
            ).first()
        return dict(row.engine_state or {}) if row is not None else {}

    async def save_engine_state(self, task_id: str, worker_id: str, state: dict[str, Any]) -> bool:
        """Replace the engine state of a task ``worker_id`` holds. False: the lease is lost."""
        async with self._writer() as conn:
            result = await conn.execute(
                update(tasks).where(*self._held(task_id, worker_id)).values(engine_state=state)
            )
        return bool(result.rowcount == 1)

    async def defer_task(self, task_id: str, worker_id: str, delay_s: float) -> bool:
        """Give a held task back as ``submitted``, claimable after ``delay_s``; the attempt is
        not counted (the engine's provider was busy, not the task at fault). No event is
        written, nor by the next claim: the client saw ``processing`` once. False: the lease
        is lost."""
        now = self.clock()
        async with self._writer() as conn:
            result = await conn.execute(
                update(tasks)
                .where(*self._held(task_id, worker_id))
                .values(
                    status=TaskStatus.SUBMITTED.value,
                    lease_owner=None,
                    lease_expires_at=None,
                    attempts=tasks.c.attempts - 1,  # held: the claim counted one
                    run_after=now + int(max(0.0, delay_s) * 1000),
                    updated_at=now,
                )
            )
        return bool(result.rowcount == 1)

    # -- helpers ----------------------------------------------------------------------------

    async def _account_row(self, conn: AsyncConnection, account_id: int) -> Row[Any] | None:
        return (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()

    async def _account_for_create(
        self, conn: AsyncConnection, account_id: int, default_concurrency: int
    ) -> Account:
        """The account, its row locked when a create must count its tasks (a concurrency
        limit or a unit quota): creates of such an account then run one at a time. SQLite's
        BEGIN IMMEDIATE serializes every writer already."""
        account = await self._read_account(conn, _ACCOUNT, account_id)
        limit = account.max_concurrent_tasks
        counts = (default_concurrency if limit is None else limit) > 0
        if is_sqlite(self.engine) or not (counts or account.unit_quota is not None):
            return account
        # again under the lock: the limits as they are once this create is the only one
        return await self._read_account(conn, _ACCOUNT_FOR_UPDATE, account_id)

    async def _read_account(self, conn: AsyncConnection, query: Any, account_id: int) -> Account:
        row = (await conn.execute(query, {"account_id": account_id})).first()
        if row is None:
            raise LookupError(f"account {account_id} does not exist")
        return acct.row_to_account(row)

    async def _units_committed(self, conn: AsyncConnection, account_id: int) -> Decimal:
        rows = await conn.execute(
            select(tasks.c.units).where(
                tasks.c.account_id == account_id, tasks.c.status != TaskStatus.FAILED.value
            )
        )
        return sum((Decimal(u) for (u,) in rows), Decimal(0))


# The request path's statements, built once (building a statement per call cost as much CPU
# as running it), and prepared (db.py: on SQLite they skip SQLAlchemy's execution machinery).
_INSERT_TASK = prepared(insert(tasks))
# the columns of tasks a new task leaves to their defaults (:func:`_task_row` gives the rest)
_NEW_TASK_DEFAULTS = (
    "lease_owner",
    "lease_expires_at",
    "cancel_reason",
    "started_at",
    "engine_state",
    "pokes",
)
_ACCOUNT = prepared(select(accounts).where(accounts.c.id == bindparam("account_id")))
_ACCOUNT_FOR_UPDATE = _ACCOUNT.with_for_update()  # PostgreSQL's: not prepared
_OWN_TASK = (tasks.c.account_id == bindparam("account_id"), tasks.c.task_id == bindparam("ident"))
_TASK_BY_ID = prepared(select(tasks).where(*_OWN_TASK))
_TASK_ID_BY_ID = prepared(select(tasks.c.task_id).where(*_OWN_TASK))
_TASK_BY_EXTERNAL_ID = prepared(
    select(tasks).where(
        tasks.c.account_id == bindparam("account_id"),
        tasks.c.external_task_id == bindparam("ident"),
    )
)
_TASK_PAGE_IDS = prepared(
    select(tasks.c.task_id)
    .where(tasks.c.account_id == bindparam("account_id"))
    .order_by(tasks.c.created_at.desc(), tasks.c.task_id.desc())
    .limit(bindparam("limit", type_=Integer))
    .offset(bindparam("offset", type_=Integer))
)
_TASK_PAGE = prepared(_TASK_PAGE_IDS.with_only_columns(*tasks.c))
_SECRET_KEY = prepared(
    select(access_keys.c.account_id, access_keys.c.secret_key).where(
        access_keys.c.access_key == bindparam("access_key")
    )
)
_API_KEY_ACCOUNT = prepared(
    select(api_keys.c.account_id).where(api_keys.c.key_hash == bindparam("key_hash"))
)


def _task_row(record: TaskRecord, base_url: str | None) -> dict[str, Any]:
    """The ``tasks`` row of a new task (the columns left out keep their defaults)."""
    return {
        "task_id": record.task_id,
        "account_id": record.account_id,
        "external_task_id": record.external_task_id,
        "model_name": record.model_name,
        "params": record.params,
        "status": record.status.value,
        "status_msg": "",
        "progress": 0,
        "callback_url": record.callback_url,
        "watermark": record.watermark,
        "result": {},
        "units": record.units,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "attempts": 0,
        "base_url": base_url,
        "run_after": record.run_after,
    }


def _one_statement_create() -> Select[Any]:
    """PostgreSQL: a create as one statement, atomic in autocommit. It inserts the task (the
    columns of :func:`_task_row`), its ``submitted`` event (:func:`event_row`) and notifies
    the workers, only when the account exists and has no concurrency limit (its own, else the
    ``default_concurrency`` parameter) and no unit quota; it returns the task id, or no row."""
    unlimited = select(accounts.c.id).where(
        accounts.c.id == bindparam("account_id"),
        func.coalesce(
            accounts.c.max_concurrent_tasks, bindparam("default_concurrency", type_=Integer)
        )
        <= 0,
        accounts.c.unit_quota.is_(None),
    )
    task_columns = [column for column in tasks.c if column.key not in _NEW_TASK_DEFAULTS]
    new_task = (
        insert(tasks)
        .from_select(
            task_columns,
            select(*(bindparam(c.key, type_=c.type) for c in task_columns)).where(
                unlimited.exists()
            ),
            include_defaults=False,
        )
        .returning(tasks.c.task_id)
        .cte("new_task")
    )
    event_columns = [c for c in task_events.c if c.key not in ("id", "last_error")]  # defaults
    new_event = (
        insert(task_events)
        .from_select(
            event_columns,
            select(
                *(
                    new_task.c.task_id
                    if c.key == "task_id"
                    else bindparam(f"event_{c.key}", type_=c.type)
                    for c in event_columns
                )
            ),
            include_defaults=False,
        )
        .returning(task_events.c.id)
        .cte("new_event")
    )
    return select(new_task.c.task_id, NOTIFY).add_cte(new_event)


def _event_values(record: TaskRecord) -> dict[str, Any]:
    """:func:`event_row` as the parameters of :data:`_CREATE_UNLIMITED`."""
    return {f"event_{key}": value for key, value in event_row(record).items() if key != "task_id"}


_CREATE_UNLIMITED = prepared(_one_statement_create())


def _page(account_id: int, page: int, page_size: int) -> dict[str, int]:
    return {"account_id": account_id, "limit": page_size, "offset": (page - 1) * page_size}


def _row_to_task(row: Row[Any]) -> TaskRecord:
    m = row._mapping
    return TaskRecord(
        task_id=m["task_id"],
        account_id=m["account_id"],
        model_name=m["model_name"],
        params=dict(m["params"]),
        status=TaskStatus(m["status"]),
        created_at=int(m["created_at"]),
        updated_at=int(m["updated_at"]),
        status_msg=m["status_msg"] or "",
        progress=int(m["progress"]),
        external_task_id=m["external_task_id"],
        callback_url=m["callback_url"],
        watermark=bool(m["watermark"]),
        result=dict(m["result"] or {}),
        units=m["units"],
        attempts=int(m["attempts"]),
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
        cancel_reason=m["cancel_reason"],
        run_after=int(m["run_after"] or 0),
        started_at=m["started_at"],
    )


__all__: Sequence[str] = ["Account", "Credentials", "Heartbeat", "NewTask", "Store", "TaskEvent"]
