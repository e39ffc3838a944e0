"""Wiring the sandbox engine to the store's control tables, wherever a worker runs."""

from __future__ import annotations

from collections.abc import Mapping

from reelgate.engines.base import Engine
from reelgate.engines.sandbox import SandboxEngine
from reelgate.store import Store
from reelgate.store.sandbox import SandboxControl


def connect_sandbox(engines: Mapping[str, Engine], store: Store) -> None:
    """Let sandbox engines read ``/_sandbox`` signals (release, finish, advance) from ``store``,
    so a signal written by the API reaches a worker in any process."""
    for engine in engines.values():
        if isinstance(engine, SandboxEngine):
            engine.connect(SandboxControl(store.engine, store.clock))
