"""A finished task's JSON is rendered once and reused for a few seconds (api/service.py); an
unfinished one is rendered on every read, and the store is asked every time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reelgate.api.service import RENDER_REUSE_S, Services
from reelgate.domain.errors import NotFoundError
from reelgate.domain.kling import kling_models
from reelgate.domain.models import Catalog
from reelgate.settings import Settings
from reelgate.storage import open_storage
from reelgate.store import NewTask, Store

BASE = "http://testserver/"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Services, Clock, int]]:
    settings = Settings(data_dir=tmp_path / "data")
    store = await Store.open(settings.store_url)
    clock = Clock()
    services = Services(
        settings, store, Catalog(kling_models()), open_storage(settings), monotonic=clock
    )
    creds = await store.create_account("a")
    yield services, clock, creds.account_id
    await store.close()


async def _finished(services: Services, account_id: int, prompt: str) -> str:
    """A succeeded task with one video, its blobs on disk."""
    params = {"prompt": prompt, "duration": "5", "model_name": "kling-v1"}
    task = await services.store.create_task(NewTask(account_id, "kling-v1", params, Decimal(1)))
    claimed = await services.store.claim_task("w", 60)
    assert claimed is not None and claimed.task_id == task.task_id
    blob = Path(services.settings.data_dir) / "blob.mp4"
    blob.write_bytes(b"\0" * 64)
    video: dict[str, Any] = {"id": "v", "duration": "5"}
    for field, name in (("key", "0.mp4"), ("watermark_key", "0.wm.mp4")):
        key = video[field] = f"videos/{task.task_id}/{name}"
        services.storage.put(key, blob, "video/mp4")
    assert await services.store.finish_task(task.task_id, "w", {"videos": [video]})
    return task.task_id


def _videos(body: bytes) -> list[dict[str, Any]]:
    videos: list[dict[str, Any]] = json.loads(body)["task_result"].get("videos", [])
    return videos


async def test_a_finished_task_is_rendered_once_within_the_reuse_window(
    setup: tuple[Services, Clock, int],
) -> None:
    services, clock, account = setup
    task_id = await _finished(services, account, "once")
    first = await services.task_view(account, task_id, BASE)
    (video,) = _videos(first)
    assert video["url"].startswith(BASE + "files/videos/")
    # the blobs go (a retention sweep); within the window the answer is reused as it was
    services.storage.delete(f"videos/{task_id}/0.mp4")
    clock.now += RENDER_REUSE_S / 2
    assert await services.task_view(account, task_id, BASE) is first
    (listed,) = await services.list_view(account, 1, 30, BASE)
    assert listed is first
    # past it, rendered again: the swept video is left out (no broken link)
    clock.now += RENDER_REUSE_S
    again = await services.task_view(account, task_id, BASE)
    assert _videos(again) == [] and json.loads(again)["task_status"] == "succeed"


async def test_renders_are_per_base_url_and_the_store_decides_who_sees_them(
    setup: tuple[Services, Clock, int],
) -> None:
    services, _clock, account = setup
    task_id = await _finished(services, account, "bases")
    here = await services.task_view(account, task_id, BASE)
    there = await services.task_view(account, task_id, "https://other.example/")
    assert _videos(there)[0]["url"].startswith("https://other.example/files/")
    assert _videos(here)[0]["url"].startswith(BASE)
    other = await services.store.create_account("b")
    with pytest.raises(NotFoundError):
        await services.task_view(other.account_id, task_id, BASE)
    # another account's own task whose external id is that task id: its own, not the render
    params = {"prompt": "b's", "duration": "5", "model_name": "kling-v1"}
    new = NewTask(other.account_id, "kling-v1", params, Decimal(1), external_task_id=task_id)
    theirs = await services.store.create_task(new)
    body = json.loads(await services.task_view(other.account_id, task_id, BASE))
    assert body["task_id"] == theirs.task_id and body["task_status"] == "submitted"


async def test_an_unfinished_task_is_rendered_on_every_read(
    setup: tuple[Services, Clock, int],
) -> None:
    services, _clock, account = setup
    params = {"prompt": "live", "duration": "5", "model_name": "kling-v1"}
    task = await services.store.create_task(NewTask(account, "kling-v1", params, Decimal(1)))
    assert json.loads(await services.task_view(account, task.task_id, BASE))["task_progress"] == 0
    assert await services.store.claim_task("w", 60) is not None
    assert await services.store.heartbeat(task.task_id, "w", 60, progress=40) is not None
    body = json.loads(await services.task_view(account, task.task_id, BASE))
    assert body["task_status"] == "processing" and body["task_progress"] == 40


async def test_a_page_with_an_unfinished_task_is_read_whole_and_shows_it_live(
    setup: tuple[Services, Clock, int],
) -> None:
    services, _clock, account = setup
    done = await _finished(services, account, "done")
    (first,) = await services.list_view(account, 1, 30, BASE)  # rendered: reused from now on
    params = {"prompt": "live", "duration": "5", "model_name": "kling-v1"}
    live = await services.store.create_task(NewTask(account, "kling-v1", params, Decimal(1)))
    newest, older = await services.list_view(account, 1, 30, BASE)
    assert older is first and json.loads(first)["task_id"] == done
    assert json.loads(newest)["task_id"] == live.task_id
    assert await services.store.claim_task("w", 60) is not None
    assert await services.store.heartbeat(live.task_id, "w", 60, progress=70) is not None
    newest, _ = await services.list_view(account, 1, 30, BASE)
    assert json.loads(newest)["task_progress"] == 70
