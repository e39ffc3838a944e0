"""The SDK's surface against a fake external Kling server: create, get, list, wait, download."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from reelgate.client import (
    AsyncTask,
    CameraControl,
    InvalidParameterError,
    NotFoundError,
    PermissionDeniedError,
    Task,
    TaskFailedError,
    TaskNotReadyError,
    TaskStatus,
    TransportError,
    WaitTimeoutError,
)

from .client_fakes import (
    FAIL_SCRIPT,
    FILES_HOST,
    TEST_SECRET_KEY,
    VIDEO_BYTES,
    FakeKling,
    async_client,
    sync_client,
)


def test_create_sends_the_kling_wire_body() -> None:
    fake = FakeKling()
    with sync_client(fake) as client:
        task = client.text2video.create(
            prompt="a fox",
            model_name="kling-v1",
            mode="std",
            duration=5,
            sound=False,
            camera_control=CameraControl.model_validate({"type": "simple", "config": {"zoom": 5}}),
            watermark=True,
            external_task_id="order-1",
        )
    body = json.loads(fake.api_requests()[0].content)
    assert body == {
        "prompt": "a fox",
        "model_name": "kling-v1",
        "mode": "std",
        "duration": "5",
        "sound": "off",
        "camera_control": {
            "type": "simple",
            "config": {
                "horizontal": 0.0,
                "vertical": 0.0,
                "pan": 0.0,
                "tilt": 0.0,
                "roll": 0.0,
                "zoom": 5.0,
            },
        },
        "watermark_info": {"enabled": True},
        "external_task_id": "order-1",
    }
    assert isinstance(task, Task)
    assert task.status is TaskStatus.SUBMITTED
    assert task.external_task_id == "order-1"


def test_unset_options_are_left_to_the_server() -> None:
    fake = FakeKling()
    with sync_client(fake) as client:
        client.text2video.create(prompt="a fox")
    assert json.loads(fake.api_requests()[0].content) == {"prompt": "a fox"}


@pytest.mark.parametrize(
    "options,fragment",
    [
        ({"duration": "five"}, "duration"),
        ({"mode": "professional"}, "mode"),
        ({"cfg_scale": 2}, "cfg_scale"),
        ({"camera_control": {"type": "simple", "config": {"zoom": 1, "pan": 1}}}, "exactly one"),
        ({"callback_url": "ftp://x"}, "callback_url"),
    ],
)
def test_bad_values_fail_before_any_request(options: dict[str, object], fragment: str) -> None:
    fake = FakeKling()
    with sync_client(fake) as client, pytest.raises(InvalidParameterError, match=fragment) as exc:
        client.text2video.create(prompt="a fox", **options)  # type: ignore[arg-type]
    assert exc.value.code == 1201
    assert fake.requests == []


def test_empty_prompt_fails_before_any_request() -> None:
    fake = FakeKling()
    with sync_client(fake) as client, pytest.raises(InvalidParameterError, match="prompt"):
        client.text2video.create(prompt="   ")
    assert fake.requests == []


@pytest.mark.parametrize("prefix", ["", "/kling"])
def test_base_url_prefix_is_kept(prefix: str) -> None:
    fake = FakeKling(prefix=prefix)
    with sync_client(fake, base_url=f"https://api.example{prefix}/") as client:
        task = client.text2video.create(prompt="a fox")
        client.text2video.get(task.id)
    assert [r.url.path for r in fake.api_requests()] == [
        f"{prefix}/v1/videos/text2video",
        f"{prefix}/v1/videos/text2video/{task.id}",
    ]


def test_wait_reports_progress_and_download_streams(tmp_path: Path) -> None:
    fake = FakeKling()
    seen: list[tuple[str, int]] = []
    with sync_client(fake) as client:
        task = client.text2video.create(prompt="a fox")
        finished = task.wait(
            poll_interval=0.001, on_progress=lambda t: seen.append((t.status, t.progress))
        )
        assert finished is task
        path = task.download(tmp_path)
    assert seen == [("processing", 10), ("processing", 60), ("succeed", 100)]
    assert task.succeeded and task.units == "1"
    assert path == tmp_path / f"{task.id}.mp4"
    assert path.read_bytes() == VIDEO_BYTES
    assert list(tmp_path.iterdir()) == [path]  # no .part file left behind
    files = [r for r in fake.requests if r.url.host == FILES_HOST]
    assert len(files) == 1 and "authorization" not in files[0].headers


def test_get_by_external_id_and_download_watermarked_copy(tmp_path: Path) -> None:
    fake = FakeKling(script=[("succeed", 100)])
    with sync_client(fake) as client:
        client.text2video.create(prompt="a fox", external_task_id="my id 1", watermark=True)
        task = client.text2video.get("my id 1")
        path = task.download(tmp_path / "out" / "fox.mp4", watermarked=True)
    assert task.succeeded
    assert path == tmp_path / "out" / "fox.mp4" and path.read_bytes() == VIDEO_BYTES
    assert fake.requests[-1].url.path.endswith("-wm.mp4")


def test_download_refreshes_an_expired_link_once(tmp_path: Path) -> None:
    fake = FakeKling(script=[("succeed", 100)])
    fake.expired_links = 1
    with sync_client(fake) as client:
        task = client.text2video.create(prompt="a fox").refresh()
        assert task.download(tmp_path / "a.mp4").read_bytes() == VIDEO_BYTES
        fake.expired_links = 2
        with pytest.raises(PermissionDeniedError, match="expired") as caught:
            task.download(tmp_path / "b.mp4")
    assert caught.value.code == 1103
    assert not (tmp_path / "b.mp4").exists()


def test_download_before_success_is_not_ready(tmp_path: Path) -> None:
    fake = FakeKling()
    with sync_client(fake) as client:
        task = client.text2video.create(prompt="a fox")
        with pytest.raises(TaskNotReadyError) as caught:
            task.download(tmp_path)
    assert caught.value.task is task and caught.value.code == 9004


def test_failed_task_raises_with_the_reason() -> None:
    fake = FakeKling(script=FAIL_SCRIPT)
    with sync_client(fake) as client:
        task = client.text2video.create(prompt="a fox")
        with pytest.raises(TaskFailedError, match="content policy") as caught:
            task.wait(poll_interval=0.001)
    assert caught.value.task is task and task.failed


def test_wait_times_out_leaving_the_task_running() -> None:
    fake = FakeKling(script=[("processing", 5)] * 1000)
    with sync_client(fake) as client:
        task = client.text2video.create(prompt="a fox")
        with pytest.raises(WaitTimeoutError, match="keeps running") as caught:
            task.wait(timeout=0.05, poll_interval=0.01)
    assert caught.value.task.status == "processing"


def test_unknown_task_is_not_found() -> None:
    with sync_client(FakeKling()) as client, pytest.raises(NotFoundError) as caught:
        client.text2video.get("999")
    assert caught.value.code == 1203 and caught.value.http_status == 404
    assert caught.value.request_id


def test_list_and_iterate_all_pages() -> None:
    fake = FakeKling()
    with sync_client(fake) as client:
        ids = [client.text2video.create(prompt=f"fox {i}").id for i in range(5)]
        page = client.text2video.list(page=1, page_size=2)
        every = [t.id for t in client.text2video.iter_all(page_size=2)]
    assert [t.id for t in page] == ids[::-1][:2]
    assert every == ids[::-1]
    lists = [r for r in fake.api_requests() if r.method == "GET"]
    assert [r.url.params["pageNum"] for r in lists] == ["1", "1", "2", "3"]


def test_api_key_and_jwt_are_sent_as_bearer() -> None:
    fake = FakeKling()
    with sync_client(fake) as client:
        client.text2video.list()
    jwt_client = sync_client(fake, api_key=None, access_key="ak", secret_key=TEST_SECRET_KEY)
    with jwt_client as client:
        client.text2video.list()
    first, second = (r.headers["authorization"] for r in fake.api_requests())
    assert first == "Bearer test-key"
    assert second.startswith("Bearer ey") and second.count(".") == 2


async def test_async_client_has_the_same_surface(tmp_path: Path) -> None:
    fake = FakeKling()
    seen: list[int] = []

    async def record(task: AsyncTask) -> None:
        seen.append(task.progress)

    async with async_client(fake) as client:
        task = await client.text2video.create(prompt="a fox", aspect_ratio="9:16")
        assert isinstance(task, AsyncTask)
        await task.wait(poll_interval=0.001, on_progress=record)
        path = await task.download(tmp_path)
        again = await client.text2video.get(task.id)
        listed = await client.text2video.list()
        every = [t.id async for t in client.text2video.iter_all()]
    assert seen == [10, 60, 100]
    assert path.read_bytes() == VIDEO_BYTES
    assert again.succeeded and [t.id for t in listed] == every == [task.id]


async def test_async_failed_task_raises() -> None:
    async with async_client(FakeKling(script=FAIL_SCRIPT)) as client:
        task = await client.text2video.create(prompt="a fox")
        with pytest.raises(TaskFailedError):
            await task.wait(poll_interval=0.001, on_progress=lambda t: None)


async def test_async_download_failure_leaves_no_partial_file(tmp_path: Path) -> None:
    fake = FakeKling(script=[("succeed", 100)])
    async with async_client(fake) as client:
        task = await (await client.text2video.create(prompt="a fox")).refresh()
        fake.interrupt(*[httpx.ReadError("reset")] * 4)
        with pytest.raises(TransportError, match="reset"):
            await task.download(tmp_path)
    assert _files(tmp_path) == []


def _files(directory: Path) -> list[Path]:
    return list(directory.iterdir())
