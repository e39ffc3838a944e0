"""Engine creation per dialect: SQLite gets WAL and serialized writers, PostgreSQL a pool."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
# In WAL mode both modes survive a crash of the process: a commit is in the WAL file (the
# OS page cache) before it returns. FULL also fsyncs the WAL at every commit, so a commit
# survives power loss too; NORMAL fsyncs only at checkpoints and may lose the last commits.
# Measured in bench/sqlite_durability.py; the default is FULL (settings.py).
SQLITE_SYNCHRONOUS = ("FULL", "NORMAL")


def create_engine(url: str) -> AsyncEngine:
    """An engine for ``url``. A SQLite URL may carry ``?synchronous=FULL|NORMAL`` (default FULL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    synchronous = str(parsed.query.get("synchronous", "FULL")).upper()
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(
            f"synchronous={synchronous!r} in the SQLite store URL (REELGATE_SQLITE_SYNCHRONOUS)"
            f" is not one of {', '.join(SQLITE_SYNCHRONOUS)}"
        )
    parsed = parsed.difference_update_query(["synchronous"])
    if parsed.database and parsed.database != ":memory:":
        from pathlib import Path

        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (see below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock up front: a deferred transaction that later writes can hit
        # SQLITE_BUSY without waiting. Readers keep deferred BEGIN, which WAL never blocks.
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
