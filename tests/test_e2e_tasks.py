"""Tasks that finish, through real processes: serve + worker + sandbox + storage (issue 3)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from .helpers import assert_error, assert_ok
from .server import REELGATE, ServerProcess, reelgate_env, running_server, stop

pytestmark = pytest.mark.slow

CREATE = "/v1/videos/text2video"


class Session:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {server.credentials()['api_key']}"}

    def create(self, **body: Any) -> str:
        r = httpx.post(self.server.base_url + CREATE, json=body, headers=self.headers, timeout=30)
        return str(assert_ok(r)["task_id"])

    def get(self, task_id: str) -> dict[str, Any]:
        url = f"{self.server.base_url}{CREATE}/{task_id}"
        data: dict[str, Any] = assert_ok(httpx.get(url, headers=self.headers, timeout=30))
        return data

    def wait(self, task_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.get(task_id)
            if task["task_status"] in ("succeed", "failed"):
                return task
            time.sleep(0.2)
        raise AssertionError(f"task {task_id} did not finish: {self.get(task_id)}")


def decode(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        duration = float(container.duration or 0) / av.time_base
        return {
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "fps": float(video.average_rate or 0),
            "frames": frames,
            "duration": duration,
            "audio": len(container.streams.audio) > 0,
            "codec": video.codec_context.name,
            "pix_fmt": video.codec_context.pix_fmt,
        }


CASES = [
    # model, extra body, (width, height), fps, seconds, audio
    ("kling-v1", {"aspect_ratio": "16:9"}, (1280, 720), 30, 5, False),
    ("kling-v1-6", {"mode": "pro", "aspect_ratio": "9:16"}, (1080, 1920), 24, 5, False),
    ("kling-v2-master", {"aspect_ratio": "1:1", "duration": "10"}, (960, 960), 24, 10, False),
    ("kling-v2-6", {"mode": "pro", "sound": "on"}, (1920, 1080), 24, 5, True),
    ("kling-v3", {"duration": 3, "sound": "on", "aspect_ratio": "9:16"}, (720, 1280), 24, 3, True),
]


def test_tasks_across_models_render_what_was_asked(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", "--workers", "2") as server:
        s = Session(server)
        ids = [
            s.create(
                model_name=model,
                prompt=f"{model} over a calm sea",
                watermark_info={"enabled": i == 0},
                **extra,
            )
            for i, (model, extra, *_rest) in enumerate(CASES)
        ]
        for i, (task_id, (model, _extra, size, fps, seconds, audio)) in enumerate(
            zip(ids, CASES, strict=True)
        ):
            task = s.wait(task_id)
            assert task["task_status"] == "succeed", task
            assert task["task_progress"] == 100 and task["final_unit_deduction"] != "0"
            (video,) = task["task_result"]["videos"]
            assert video["duration"] == str(seconds)
            clip = tmp_path / f"{i}.mp4"
            clip.write_bytes(httpx.get(video["url"], timeout=30).content)
            info = decode(clip)
            assert (info["width"], info["height"]) == size, (model, info)
            assert info["fps"] == fps and info["frames"] == fps * seconds, (model, info)
            assert abs(info["duration"] - seconds) < 0.2, (model, info)
            assert info["audio"] is audio and info["codec"] == "h264"
            assert info["pix_fmt"] == "yuv420p"
            thumb = httpx.get(video["thumbnail_url"], timeout=30)
            assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
            if i == 0:
                marked = tmp_path / "marked.mp4"
                marked.write_bytes(httpx.get(video["watermark_url"], timeout=30).content)
                assert decode(marked)["frames"] == info["frames"]
                assert marked.read_bytes() != clip.read_bytes()
            else:
                assert video["watermark_url"] == ""
        # a tampered link is refused with the envelope; a ranged read works
        url = s.get(ids[0])["task_result"]["videos"][0]["url"]
        assert_error(httpx.get(url[:-2] + "00"), 403, 1103)
        part = httpx.get(url, headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100


def test_failures_are_reported_and_free(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server:
        s = Session(server)
        policy = s.wait(s.create(prompt="a cat [[sandbox:fail=content_policy]]"))
        assert policy["task_status"] == "failed" and policy["task_status_msg"]
        assert policy["final_unit_deduction"] == "0" and policy["task_result"] == {}
        crash = s.wait(s.create(prompt="a dog [[sandbox:crash]]"))
        assert crash["task_status"] == "failed"
        assert "engine error" in crash["task_status_msg"]
        # the worker survives engine exceptions and keeps serving
        ok = s.wait(s.create(prompt="a bird", duration="5"))
        assert ok["task_status"] == "succeed"


def test_progress_is_reported_while_processing(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server:
        s = Session(server)
        task_id = s.create(prompt="slow clouds [[sandbox:slow=4]]")
        seen = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            task = s.get(task_id)
            seen.add((task["task_status"], task["task_progress"]))
            if task["task_status"] == "succeed":
                break
            time.sleep(0.2)
        partial = {p for status, p in seen if status == "processing" and 0 < p < 100}
        assert len(partial) >= 2, seen
        assert ("succeed", 100) in seen


def _start_worker(data: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (data / f"worker-{time.monotonic_ns()}.log").open("wb") as log:
        return subprocess.Popen(
            [*REELGATE, "worker", "--data-dir", str(data), "--workers", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=reelgate_env(env),
        )


def _wait_status(s: Session, task_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = s.get(task_id)
        if task["task_status"] == status:
            return task
        time.sleep(0.1)
    raise AssertionError(f"task never reached {status}: {s.get(task_id)}")


def test_sigkilled_worker_loses_lease_and_task_finishes_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"REELGATE_LEASE_SECONDS": "2"}
    with running_server(data, "--no-worker", env=env) as server:
        s = Session(server)
        task_id = s.create(prompt="a storm at sea [[sandbox:slow=5]]")
        first = _start_worker(data, env)
        try:
            _wait_status(s, task_id, "processing")
            time.sleep(1.0)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            stop(first)
        assert s.get(task_id)["task_status"] == "processing"
        second = _start_worker(data, env)
        try:
            done = s.wait(task_id, timeout=90)
        finally:
            stop(second)
        assert done["task_status"] == "succeed", done
        files = sorted(p.name for p in (data / "files" / "videos" / task_id).iterdir())
        assert files == ["0.jpg", "0.mp4"]
        # exactly one end: the outbox has one succeed event and the task was claimed twice
        import sqlite3

        db = sqlite3.connect(data / "reelgate.db")
        statuses = [
            r[0]
            for r in db.execute(
                "SELECT status FROM task_events WHERE task_id=? ORDER BY id", (task_id,)
            )
        ]
        attempts = db.execute("SELECT attempts FROM tasks WHERE task_id=?", (task_id,)).fetchone()[
            0
        ]
        db.close()
        assert statuses == ["submitted", "processing", "succeed"]
        assert attempts == 2
        # the killed attempt's scratch dir went when the task was reclaimed; the second's at its end
        assert sorted(p.name for p in (data / "work").iterdir()) == []


def test_created_tasks_survive_a_sigkill_right_after_their_200(tmp_path: Path) -> None:
    """An acknowledged create is durable against a crash of the process (SQLite, WAL)."""
    data = tmp_path / "data"
    with running_server(data, "--no-worker") as server:
        s = Session(server)
        ids = [s.create(prompt=f"durable {i}") for i in range(5)]
        last = s.create(prompt="the very last one")
        server.proc.send_signal(signal.SIGKILL)  # right after the 200: no graceful close
        server.proc.wait(10)
    assert server.proc.returncode == -signal.SIGKILL
    with running_server(data, "--no-worker") as server:
        s = Session(server)
        for task_id in [*ids, last]:
            assert s.get(task_id)["task_status"] == "submitted"


def test_sigterm_lets_the_running_task_finish(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data, "--no-worker") as server:
        s = Session(server)
        task_id = s.create(prompt="sunrise [[sandbox:slow=3]]")
        worker = _start_worker(data, {"REELGATE_SHUTDOWN_GRACE": "30"})
        _wait_status(s, task_id, "processing")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
        assert s.get(task_id)["task_status"] == "succeed"
        # and it took no new task after the signal
        later = s.create(prompt="never picked up")
        time.sleep(1)
        assert s.get(later)["task_status"] == "submitted"


def test_retention_sweep_leaves_no_broken_links(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data) as server:
        s = Session(server)
        task = s.wait(s.create(prompt="short lived"))
        assert task["task_result"]["videos"]
    # a retention of ~0 days sweeps everything at the next start
    with running_server(data, env={"REELGATE_RETENTION_DAYS": "0.00001"}) as server:
        s = Session(server)
        deadline = time.monotonic() + 20
        while s.get(task["task_id"])["task_result"] != {} and time.monotonic() < deadline:
            time.sleep(0.2)
        swept = s.get(task["task_id"])
        assert swept["task_status"] == "succeed" and swept["task_result"] == {}
