"""The SDK against a real ``reelgate serve`` subprocess: both clients, both auth styles, through
create, wait with progress callbacks, download and decode."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from reelgate.client import AsyncClient, AsyncTask, Client, TaskFailedError, WaitTimeoutError

from .client_support import RunningServer, keys_for, reelgate_serve

pytestmark = pytest.mark.slow

PROMPT = "a paper boat on a pond [[sandbox:slow=1]]"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with reelgate_serve(tmp_path_factory.mktemp("e2e") / "data") as running:
        yield running


def _decode(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.width, stream.height, sum(1 for _ in container.decode(stream))


@pytest.mark.parametrize("auth", ["api", "jwt"])
def test_sync_client(server: RunningServer, auth: str, tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    with Client(server.base_url, **keys_for(server.credentials, auth)) as client:
        task = client.text2video.create(
            prompt=PROMPT, model_name="kling-v1-6", mode="pro", aspect_ratio="1:1"
        )
        task.wait(
            timeout=120,
            poll_interval=0.2,
            on_progress=lambda t: seen.append((t.status, t.progress)),
        )
        path = task.download(tmp_path)
    assert seen[-1] == ("succeed", 100) and len(seen) >= 2
    assert path == tmp_path / f"{task.id}.mp4"
    assert _decode(path) == (1440, 1440, 24 * 5)


@pytest.mark.parametrize("auth", ["api", "jwt"])
async def test_async_client(server: RunningServer, auth: str, tmp_path: Path) -> None:
    seen: list[int] = []

    async def on_progress(task: AsyncTask) -> None:
        seen.append(task.progress)

    async with AsyncClient(server.base_url, **keys_for(server.credentials, auth)) as client:
        task = await client.text2video.create(prompt=PROMPT, model_name="kling-v3", duration=3)
        await task.wait(timeout=120, poll_interval=0.2, on_progress=on_progress)
        path = await task.download(tmp_path / "boat.mp4")
        again = await client.text2video.get(task.id)
    assert seen[-1] == 100 and seen == sorted(seen)
    assert again.succeeded and again.videos[0].url.startswith(server.base_url)
    assert await asyncio.to_thread(_decode, path) == (1280, 720, 24 * 3)


def test_defaults_come_from_the_servers_credentials_file(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in server.env().items():
        if key.startswith("REELGATE_"):
            monkeypatch.setenv(key, value)
    for name in ("BASE_URL", "API_KEY", "ACCESS_KEY", "SECRET_KEY"):
        monkeypatch.delenv(f"REELGATE_{name}", raising=False)
    with Client() as client:
        assert client.base_url == server.base_url
        assert isinstance(client.text2video.list(page_size=1), list)


def test_failure_and_timeout_against_the_real_worker(server: RunningServer) -> None:
    with Client(server.base_url, api_key=server.credentials["api_key"]) as client:
        failing = client.text2video.create(prompt="x [[sandbox:fail=content_policy]]")
        slow = client.text2video.create(prompt="x [[sandbox:slow=30]]")
        with pytest.raises(TaskFailedError, match="risk control"):
            failing.wait(timeout=60, poll_interval=0.2)
        with pytest.raises(WaitTimeoutError):
            slow.wait(timeout=0.5, poll_interval=0.1)
        assert not client.text2video.get(slow.id).finished
