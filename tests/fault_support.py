"""Fault-injection helpers: a clock the test moves, a real full filesystem (tmpfs), and a
real worker (sandbox engine, SQLite store, local storage) running on that clock."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reelgate.api.service import Services
from reelgate.domain.tasks import TaskRecord
from reelgate.engines.registry import build_engines
from reelgate.settings import Settings
from reelgate.storage import LocalStorage
from reelgate.store import Store
from reelgate.store.db import create_engine
from reelgate.store.migrate import upgrade
from reelgate.worker import Worker


class FakeClock:
    """Milliseconds that move only when the test says so: leases expire without sleeping."""

    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "4m") -> Iterator[Path]:
    """Mount a ``size`` tmpfs at ``path`` (needs root, as in CI); skip elsewhere, fail in CI."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            raise AssertionError(f"cannot mount a tmpfs at {path}: {done.stderr}")
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Write a ballast file until the filesystem is full; delete it to give the space back."""
    ballast = directory / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 4096, 1):  # big chunks, then the last page, then its last bytes
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return ballast


def leftovers(directory: Path) -> list[str]:
    """Temporary files (``.name.*.tmp``) anywhere under ``directory``."""
    return sorted(p.name for p in directory.rglob("*.tmp"))


class Rig:
    """A real worker (sandbox engine, SQLite store, local storage) on a clock the test moves."""

    def __init__(
        self, tmp_path: Path, worker: dict[str, Any] | None = None, **settings: object
    ) -> None:
        self.worker_options = worker or {}
        self.settings = Settings(
            data_dir=tmp_path / "data",
            storage_retry_s=30,
            **settings,  # type: ignore[arg-type]
        )
        self.db_url = f"sqlite+aiosqlite:///{tmp_path / 'reelgate.db'}"
        self.clock = FakeClock()

    async def start(self) -> None:
        engine = create_engine(self.db_url)
        await upgrade(engine)
        self.store = Store(engine, self.clock)
        engines = build_engines(None, self.settings.data_dir, None)
        self.aclose_engines = engines.aclose
        self.storage = LocalStorage(self.settings.files_dir, b"key")
        self.services = Services(self.settings, self.store, engines.catalog, self.storage)
        self.account = (await self.store.create_account("a")).account_id
        self.worker = Worker(
            self.store,
            engines.engines,
            engines.catalog,
            self.storage,
            self.settings,
            **{"slots": 1, "poll_interval_s": 0.05, **self.worker_options},
        )
        await self.worker.start()

    async def stop(self) -> None:
        self.worker.request_stop()
        await self.worker.stop()
        await self.aclose_engines()
        await self.store.close()

    async def create(self, prompt: str = "a lighthouse on a full disk") -> str:
        body = {"model_name": "kling-v3", "prompt": prompt, "duration": "3"}
        return (await self.services.create_text2video(self.account, body)).task_id

    async def until(
        self, task_id: str, ok: Callable[[TaskRecord], bool], within_s: float = 120
    ) -> TaskRecord:
        deadline = time.monotonic() + within_s
        while True:
            task = await self.store.get_task_by_id(task_id)
            assert task is not None
            if ok(task) and not self.work_dirs():
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached: {task} {self.work_dirs()}")
            await asyncio.sleep(0.05)

    def work_dirs(self) -> list[str]:
        root = self.settings.work_dir
        return sorted(p.name for p in root.iterdir()) if root.exists() else []


@contextlib.asynccontextmanager
async def running_rig(
    tmp_path: Path, worker: dict[str, Any] | None = None, **settings: object
) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path, worker, **settings)
    await rig.start()
    try:
        yield rig
    finally:
        await rig.stop()
