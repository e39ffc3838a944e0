"""Request rates counted in the store, so every API replica sees the same count.

A fixed window per key per minute: one row ``(key, window)`` whose count one statement
(``INSERT .. ON CONFLICT DO UPDATE .. RETURNING``) creates or increments and reads back, atomic on
SQLite and PostgreSQL alike. A refused request still counts: a client hammering past its limit
keeps being refused until the window turns.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import accounts, rate_windows

WINDOW_S = 60  # the limit is per minute


@dataclass(frozen=True)
class RateDecision:
    """One counted request: refused when ``count`` passed ``limit``."""

    count: int
    limit: int
    retry_after_s: int  # seconds until the window turns

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit


async def account_rate_limit_column(conn: AsyncConnection, account_id: int) -> int | None:
    """The account's requests per minute per key (0: unlimited, None: the server default)."""
    value = (
        await conn.execute(select(accounts.c.rate_limit).where(accounts.c.id == account_id))
    ).scalar()
    return None if value is None else int(value)


async def count_request(conn: AsyncConnection, key: str, now_ms: int) -> tuple[int, int]:
    """Count one request of ``key`` in the current window: (count so far, seconds left)."""
    now_s = now_ms // 1000
    window = now_s // WINDOW_S
    # sqlalchemy.dialects.postgresql or .sqlite: loaded with the engine already, while importing
    # the other one costs a SQLite process (the sandbox's) a tenth of a second at start
    dialect = importlib.import_module(f"sqlalchemy.dialects.{conn.dialect.name}")
    stmt = dialect.insert(rate_windows).values(key=key, window=window, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[rate_windows.c.key, rate_windows.c.window],
        set_={"count": rate_windows.c.count + 1},
    ).returning(rate_windows.c.count)
    count = int((await conn.execute(stmt)).scalar_one())
    if count == 1:
        # first request of a new window: this key's older windows are done with
        await conn.execute(
            delete(rate_windows).where(rate_windows.c.key == key, rate_windows.c.window < window)
        )
    return count, WINDOW_S - now_s % WINDOW_S
