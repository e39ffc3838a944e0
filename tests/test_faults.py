"""A full disk (issue 8, faults 1): tasks are retried, nothing is left behind, /healthz says so.

The full disk is real: a small tmpfs filled with a ballast file (see fault_support.py).
"""

from __future__ import annotations

import asyncio
import errno
import time
from pathlib import Path

import httpx
import pytest

from reelgate.api import create_app
from reelgate.domain.tasks import TaskRecord, TaskStatus
from reelgate.settings import Settings
from reelgate.storage import LocalStorage, storage_full

from .fault_support import fill, leftovers, running_rig, small_filesystem
from .helpers import assert_error, assert_ok


def given_back(task: TaskRecord) -> bool:
    return task.status is TaskStatus.PROCESSING and task.lease_owner is None


async def test_full_disk_retries_the_task_once_space_returns(tmp_path: Path) -> None:
    files = Settings(data_dir=tmp_path / "data").files_dir
    with small_filesystem(files):
        async with running_rig(tmp_path) as rig:
            ballast = fill(files)
            task_id = await rig.create()
            first = await rig.until(task_id, given_back)
            # Not failed: given back for a later attempt, counted, with the backoff as its lease.
            assert first.attempts == 1 and first.status_msg == ""
            assert first.lease_expires_at == rig.clock() + 30_000
            stored = sorted(p.name for p in files.rglob("*") if p.is_file())
            assert stored == ["ballast"]  # no temporary file, no partial output
            await asyncio.sleep(0.5)  # the clock has not moved: nobody retries early
            assert (await rig.store.get_task_by_id(task_id)) == first

            ballast.unlink()  # the space returns
            rig.clock.advance(31)
            done = await rig.until(task_id, lambda t: t.status is TaskStatus.SUCCEED)
            assert done.attempts == 2
            assert [v["key"] for v in done.result["videos"]] == [f"videos/{task_id}/0.mp4"]
            assert (files / "videos" / task_id / "0.mp4").stat().st_size > 10_000
            assert leftovers(files) == []


async def test_full_disk_fails_with_storage_full_once_attempts_are_spent(tmp_path: Path) -> None:
    files = Settings(data_dir=tmp_path / "data").files_dir
    with small_filesystem(files):
        async with running_rig(tmp_path, max_attempts=2) as rig:
            fill(files)
            task_id = await rig.create()
            await rig.until(task_id, given_back)
            rig.clock.advance(31)
            failed = await rig.until(task_id, lambda t: t.status is TaskStatus.FAILED)
            assert failed.attempts == 2
            assert failed.status_msg == (
                "storage is full: No space left on device (gave up after 2 attempts)"
            )
            assert leftovers(files) == []
            # ended for good: no third attempt
            assert await rig.store.claim_task("w", 30, max_attempts=2) is None


async def test_full_scratch_disk_during_generation_is_retried_too(tmp_path: Path) -> None:
    work = Settings(data_dir=tmp_path / "data").work_dir
    async with running_rig(tmp_path) as rig:
        with small_filesystem(work, size="1m"):
            ballast = fill(work)
            task_id = await rig.create()
            deadline = time.monotonic() + 120
            while True:  # the engine's encoder hits ENOSPC in the work dir
                task = await rig.store.get_task_by_id(task_id)
                assert task is not None and task.status is not TaskStatus.FAILED, task
                if given_back(task) and sorted(p.name for p in work.iterdir()) == ["ballast"]:
                    break
                assert time.monotonic() < deadline, task
                await asyncio.sleep(0.05)
            ballast.unlink()
            rig.clock.advance(31)
            done = await rig.until(task_id, lambda t: t.status is TaskStatus.SUCCEED)
            assert done.attempts == 2


def test_put_removes_its_partial_copy_on_a_full_disk(tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * 300_000)
    root = tmp_path / "files"
    with small_filesystem(root, size="1m"):
        storage = LocalStorage(root, b"key")
        storage.put("videos/a/0.mp4", source, "video/mp4")  # fits
        fill(root)
        with pytest.raises(OSError) as caught:
            storage.put("videos/b/0.mp4", source, "video/mp4")
        assert caught.value.errno == errno.ENOSPC and storage_full(caught.value) is caught.value
        assert leftovers(root) == []
        assert not (root / "videos" / "b" / "0.mp4").exists()
        assert (root / "videos" / "a" / "0.mp4").read_bytes() == source.read_bytes()


def test_put_removes_its_partial_copy_when_the_copy_fails_midway(tmp_path: Path) -> None:
    """The same without root: the OS boundary (the file copy) writes half, then ENOSPC."""

    def copy_then_full(src: Path, dst: Path) -> None:
        dst.write_bytes(src.read_bytes()[:1000])
        raise OSError(errno.ENOSPC, "No space left on device")

    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * 5000)
    storage = LocalStorage(tmp_path / "files", b"key", copy=copy_then_full)
    with pytest.raises(OSError):
        storage.put("videos/t/0.mp4", source, "video/mp4")
    assert [p.name for p in (tmp_path / "files").rglob("*") if p.is_file()] == []


def test_storage_full_follows_causes() -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError as exc:
            raise RuntimeError("cannot encode") from exc
    except RuntimeError as wrapped:
        assert storage_full(wrapped) is full
    assert storage_full(OSError(errno.EACCES, "Permission denied")) is None
    assert storage_full(OSError(errno.EDQUOT, "Disk quota exceeded")) is not None


def test_old_temporary_files_of_killed_writers_are_swept(tmp_path: Path) -> None:
    import os

    storage = LocalStorage(tmp_path, b"key")
    (tmp_path / "videos" / "t").mkdir(parents=True)
    stale = tmp_path / "videos" / "t" / ".0.mp4.123.456.tmp"
    fresh = tmp_path / "videos" / "t" / ".0.mp4.789.1.tmp"
    blob = tmp_path / "videos" / "t" / "0.mp4"
    for path in (stale, fresh, blob):
        path.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    os.utime(blob, (two_hours_ago, two_hours_ago))
    assert storage.sweep(older_than_s=86400) == 1  # the blob is within retention
    assert sorted(p.name for p in (tmp_path / "videos" / "t").iterdir()) == [
        ".0.mp4.789.1.tmp",
        "0.mp4",
    ]


async def test_healthz_is_503_while_storage_cannot_be_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    seconds = [1000.0]
    storage = LocalStorage(settings.files_dir, b"key", monotonic=lambda: seconds[0])
    with small_filesystem(settings.files_dir, size="1m"):
        ballast = fill(settings.files_dir)
        app = create_app(settings, storage=storage)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                responses = await asyncio.gather(*(client.get("/healthz") for _ in range(20)))
                for r in responses:
                    assert_error(r, 503, 5001, "storage not writable", "No space left on device")
                ballast.unlink()
                # The answer is cached for a few seconds: a GET storm does not probe each time.
                assert_error(await client.get("/healthz"), 503, 5001, "storage not writable")
                seconds[0] += 6
                data = assert_ok(await client.get("/healthz"))
                assert data["storage"] == "ok" and data["store"] == "ok"
        assert leftovers(settings.files_dir) == []
