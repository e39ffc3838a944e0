"""Housekeeping: retention of outputs, and scratch directories of dead attempts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from collections.abc import Collection
from pathlib import Path

from reelgate.domain.tasks import TaskStatus
from reelgate.settings import Settings
from reelgate.storage import Storage
from reelgate.store import Store

log = logging.getLogger("reelgate.retention")

_WORKDIR = re.compile(r"(?P<task_id>[0-9A-Za-z_]+)-(?P<attempt>[0-9]{1,9})")


def parse_workdir(name: str) -> tuple[str, int] | None:
    """``<task_id>-<attempt>`` → (task_id, attempt); None for anything else."""
    m = _WORKDIR.fullmatch(name)
    return (m["task_id"], int(m["attempt"])) if m else None


async def remove_stale_workdirs(
    store: Store, work_root: Path, keep: Collection[str] = ()
) -> list[str]:
    """Remove ``work_root/<task_id>-<attempt>`` dirs whose attempt cannot be running anywhere.

    Several workers may share one data directory, so a dir is kept while its attempt is the
    task's current one and is leased: the task is ``processing``, was claimed exactly
    ``attempt`` times and has an owner. Everything else is dead: the task finished or is gone,
    it was reclaimed (a later attempt), or it was given back. Names in ``keep`` (the caller's
    own running attempts) and names that are not work dirs are left alone. Dirs are listed
    before the tasks are read, so an attempt claimed meanwhile is seen as current.
    """
    names = await asyncio.to_thread(_list_dirs, work_root)
    removed = []
    for name in names:
        parsed = parse_workdir(name)
        if parsed is None or name in keep:
            continue
        task_id, attempt = parsed
        task = await store.get_task_by_id(task_id)
        current = (
            task is not None
            and task.status is TaskStatus.PROCESSING
            and task.attempts == attempt
            and task.lease_owner is not None
        )
        if not current:
            await asyncio.to_thread(shutil.rmtree, work_root / name, True)
            removed.append(name)
    return removed


def _list_dirs(root: Path) -> list[str]:
    try:
        return sorted(p.name for p in root.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []


class RetentionSweeper:
    def __init__(self, storage: Storage, settings: Settings, interval_s: float = 3600.0) -> None:
        self.storage = storage
        self.max_age_s = settings.retention_days * 86400
        self.interval_s = min(interval_s, max(1.0, self.max_age_s / 10))
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> int:
        removed = await asyncio.to_thread(self.storage.sweep, self.max_age_s)
        if removed:
            log.info("retention: deleted %d expired file(s)", removed)
        return removed

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(self.interval_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="reelgate-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
