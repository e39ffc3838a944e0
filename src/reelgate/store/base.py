"""What every part of the store shares: the engine, the clock, and transaction helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine


class StoreBase:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], int]) -> None:
        self.engine = engine
        self.clock = clock

    def _reader(self) -> Any:
        """A read transaction (SQLite: deferred BEGIN, never blocked under WAL)."""
        return self.engine.execution_options(readonly=True).begin()

    def _writer(self) -> Any:
        """A write transaction (SQLite: BEGIN IMMEDIATE, see db.py)."""
        return self.engine.begin()
