"""The API in-process with a real worker (and engines from catalogue entries) on a store whose
clock the test moves: timeouts and time in ``submitted`` pass without sleeping. No tests here;
imported by the cancel, timeout and timing suites."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from reelgate.api.app import create_app
from reelgate.engines.base import EngineFactory
from reelgate.engines.registry import build_engines
from reelgate.settings import Settings
from reelgate.storage import LocalStorage
from reelgate.store import Store
from reelgate.store.db import create_engine
from reelgate.store.migrate import upgrade
from reelgate.store.tables import task_events
from reelgate.worker import Worker

from .fault_support import FakeClock
from .helpers import assert_ok

CREATE = "/v1/videos/text2video"
HOOK = "http://127.0.0.1:9/hook"  # never delivered here: the outbox rows are what is checked


class ControlApp:
    def __init__(
        self,
        client: httpx.AsyncClient,
        store: Store,
        clock: FakeClock,
        worker: Worker,
        settings: Settings,
        api_key: str,
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock
        self.worker = worker
        self.settings = settings
        self.headers = {"Authorization": f"Bearer {api_key}"}

    async def create(self, prompt: str, model: str = "kling-v3", **body: Any) -> str:
        payload = {
            "prompt": prompt,
            "model_name": model,
            "duration": "3",  # short clips: the machine is shared
            "callback_url": HOOK,
            **body,
        }
        r = await self.client.post(CREATE, json=payload, headers=self.headers)
        return str(assert_ok(r)["task_id"])

    async def cancel(self, ident: str, prefix: str = "") -> httpx.Response:
        return await self.client.post(f"{prefix}{CREATE}/{ident}/cancel", headers=self.headers)

    async def get(self, ident: str) -> dict[str, Any]:
        task: dict[str, Any] = assert_ok(
            await self.client.get(f"{CREATE}/{ident}", headers=self.headers)
        )
        return task

    async def until(
        self, ident: str, ok: Callable[[dict[str, Any]], bool], within_s: float = 120
    ) -> dict[str, Any]:
        """Poll the task through the API until ``ok`` holds (generous bound: load is shared)."""
        deadline = time.monotonic() + within_s
        while True:
            task = await self.get(ident)
            if ok(task):
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached: {task}")
            await asyncio.sleep(0.05)

    async def events(self, task_id: str) -> list[tuple[str, str | None]]:
        """(status, callback_url) of the task's outbox events, oldest first."""
        c = task_events.c
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(
                select(c.status, c.callback_url).where(c.task_id == task_id).order_by(c.id)
            )
            return [(r.status, r.callback_url) for r in rows]

    def work_dirs(self) -> list[str]:
        root = self.settings.work_dir
        return sorted(p.name for p in root.iterdir()) if root.exists() else []

    async def until_idle(self, within_s: float = 120) -> None:
        """Until no attempt runs (its work dir is removed once the engine stopped)."""
        deadline = time.monotonic() + within_s
        while self.work_dirs():
            if time.monotonic() > deadline:
                raise AssertionError(f"work dirs left: {self.work_dirs()}")
            await asyncio.sleep(0.05)

    def stored_files(self, task_id: str) -> list[str]:
        root = self.settings.files_dir
        return sorted(str(p) for p in root.rglob("*") if task_id in str(p) and p.is_file())


def processing(task: Mapping[str, Any]) -> bool:
    return task["task_status"] == "processing"


def finished(task: Mapping[str, Any]) -> bool:
    return task["task_status"] in ("succeed", "failed")


@asynccontextmanager
async def control_app(
    tmp_path: Path,
    entries: Sequence[Mapping[str, Any]] | None = None,
    *,
    slots: int = 2,
    factories: Mapping[str, EngineFactory] | None = None,
    **settings: Any,
) -> AsyncIterator[ControlApp]:
    settings.setdefault("shutdown_grace_s", 1.0)  # tasks left stalled must not slow teardown
    config = Settings(data_dir=tmp_path / "data", callback_allow_private=True, **settings)
    clock = FakeClock()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'reelgate.db'}")
    await upgrade(engine)
    store = Store(engine, clock)
    engines = build_engines(entries, config.data_dir, None, factories)
    storage = LocalStorage(config.files_dir, b"key")
    worker = Worker(
        store,
        engines.engines,
        engines.catalog,
        storage,
        config,
        slots=slots,
        poll_interval_s=0.05,
    )
    app = create_app(
        config, store=store, catalog=engines.catalog, storage=storage, background=[worker]
    )
    try:
        async with app.router.lifespan_context(app):
            creds = await store.create_account("control")
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield ControlApp(c, store, clock, worker, config, creds.api_key)
    finally:
        await engines.aclose()
        await store.close()
