"""Both clients and both auth styles against the real app in-process (injected ASGI transport):
create, wait with progress callbacks, download and decode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from reelgate.cli.runtime import build_app
from reelgate.client import (
    AsyncClient,
    AsyncTask,
    AuthenticationError,
    Client,
    InvalidParameterError,
    NotFoundError,
    Retry,
    Task,
    TaskFailedError,
)
from reelgate.settings import Settings

from .client_support import Keys, keys_for

BASE_URL = "http://testserver"
# kling-v3 renders 3 s clips (the shortest); slow=1 makes progress visible between polls.
PROMPT = "a lighthouse at dusk [[sandbox:slow=1]]"


@dataclass
class Served:
    app: Any
    credentials: dict[str, Keys]  # auth style -> Client keyword arguments
    loop: asyncio.AbstractEventLoop


class LoopBridgeTransport(httpx.BaseTransport):
    """Lets a sync client in another thread call an ASGI app served on this event loop."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            response = await self._inner.handle_async_request(request)
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
            return httpx.Response(
                response.status_code, headers=response.headers, stream=httpx.ByteStream(raw)
            )

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    settings = Settings(data_dir=tmp_path / "data")
    async with AsyncExitStack() as stack:
        app, store = await build_app(settings, stack, bootstrap=False)
        async with app.router.lifespan_context(app):
            creds = await store.create_account("sdk-tests")
            keys = {
                "api_key": creds.api_key,
                "access_key": creds.access_key,
                "secret_key": creds.secret_key,
            }
            credentials = {auth: keys_for(keys, auth) for auth in ("api", "jwt")}
            yield Served(app, credentials, asyncio.get_running_loop())


def _decoded_size(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.width, stream.height, frames


def _progress_is_sane(seen: list[tuple[str, int]]) -> None:
    assert seen[-1] == ("succeed", 100)
    progress = [p for _, p in seen]
    assert progress == sorted(progress)
    assert len(seen) >= 2, seen  # at least one intermediate state before success


@pytest.mark.parametrize("auth", ["api", "jwt"])
async def test_async_client_create_wait_download_decode(
    served: Served, auth: str, tmp_path: Path
) -> None:
    seen: list[tuple[str, int]] = []

    async def on_progress(task: AsyncTask) -> None:
        seen.append((task.status, task.progress))

    transport = httpx.ASGITransport(app=served.app)
    creds = served.credentials[auth]
    async with AsyncClient(BASE_URL, transport=transport, **creds) as client:
        task = await client.text2video.create(
            prompt=PROMPT, model_name="kling-v3", duration=3, aspect_ratio="9:16"
        )
        await task.wait(timeout=60, poll_interval=0.1, on_progress=on_progress)
        path = await task.download(tmp_path)
        assert (await client.text2video.get(task.id)).succeeded
    _progress_is_sane(seen)
    assert task.units != "0" and task.model_name == "kling-v3"
    width, height, frames = await asyncio.to_thread(_decoded_size, path)
    assert (width, height) == (720, 1280)
    assert frames == 24 * 3


@pytest.mark.parametrize("auth", ["api", "jwt"])
async def test_sync_client_create_wait_download_decode(
    served: Served, auth: str, tmp_path: Path
) -> None:
    def scenario() -> tuple[Task, Path, list[tuple[str, int]]]:
        seen: list[tuple[str, int]] = []
        transport = LoopBridgeTransport(served.app, served.loop)
        with Client(BASE_URL, transport=transport, **served.credentials[auth]) as client:
            task = client.text2video.create(
                prompt=PROMPT, model_name="kling-v3", duration=3, watermark=True
            )
            task.wait(
                timeout=60,
                poll_interval=0.1,
                on_progress=lambda t: seen.append((t.status, t.progress)),
            )
            clean = task.download(tmp_path / "clean.mp4")
            task.download(tmp_path / "marked.mp4", watermarked=True)
            return task, clean, seen

    task, clean, seen = await asyncio.to_thread(scenario)
    _progress_is_sane(seen)
    assert task.watermark
    for name in ("clean.mp4", "marked.mp4"):
        width, height, frames = await asyncio.to_thread(_decoded_size, tmp_path / name)
        assert (width, height, frames) == (1280, 720, 72)
    assert clean.read_bytes() != (tmp_path / "marked.mp4").read_bytes()


async def test_gateway_prefix_list_and_lookup_by_external_id(served: Served) -> None:
    transport = httpx.ASGITransport(app=served.app)
    creds = served.credentials["api"]
    async with AsyncClient(f"{BASE_URL}/kling", transport=transport, **creds) as client:
        created = await client.text2video.create(prompt="a fox", external_task_id="order/42")
        found = await client.text2video.get("order/42")
        listed = [t.id async for t in client.text2video.iter_all(page_size=1)]
    assert found.id == created.id and found.external_task_id == "order/42"
    assert listed == [created.id]


async def test_server_errors_arrive_typed(served: Served) -> None:
    transport = httpx.ASGITransport(app=served.app)
    creds = served.credentials["api"]
    async with AsyncClient(BASE_URL, transport=transport, **creds) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.text2video.get("000000000000000000")
        with pytest.raises(InvalidParameterError, match="kling-v2-master"):
            await client.text2video.create(prompt="a fox", model_name="kling-v2-master", sound=True)
        failing = await client.text2video.create(prompt="a fox [[sandbox:fail]]")
        with pytest.raises(TaskFailedError, match="simulated failure"):
            await failing.wait(timeout=60, poll_interval=0.1)
    assert missing.value.request_id and missing.value.http_status == 404
    async with AsyncClient(
        BASE_URL, transport=transport, api_key="rg-wrong", retry=Retry(max_retries=0)
    ) as client:
        with pytest.raises(AuthenticationError) as denied:
            await client.text2video.list()
    assert denied.value.code == 1002
