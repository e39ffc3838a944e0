"""What every part of the store shares: the engine, the clock, and transaction helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from .db import lookup_connection, read_connection, write_transaction


class StoreBase:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], int]) -> None:
        self.engine = engine
        self.clock = clock

    def _reader(self) -> Any:
        """A connection for reads, in autocommit: each statement sees the latest commit
        (SQLite: never blocked under WAL). Reads that must agree belong in one statement."""
        return read_connection(self.engine)

    def _lookup(self) -> Any:
        """Like :meth:`_reader`, for a read of a few rows by index (on SQLite it runs on the
        event loop, see db.py): never a scan."""
        return lookup_connection(self.engine)

    def _writer(self) -> Any:
        """A write transaction (SQLite: queued in the process, then BEGIN IMMEDIATE; db.py)."""
        return write_transaction(self.engine)
