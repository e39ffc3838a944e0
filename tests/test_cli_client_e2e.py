"""The ``reelgate`` client commands as a user runs them, against a real ``reelgate serve``."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from reelgate.client import Client, NotFoundError, Task

from .client_support import RunningServer, reelgate_serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with reelgate_serve(tmp_path_factory.mktemp("cli") / "data") as running:
        yield running


def reelgate(server: RunningServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["reelgate", *args],
        cwd=cwd,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_generate_writes_a_playable_mp4(server: RunningServer, tmp_path: Path) -> None:
    result = reelgate(
        server, tmp_path, "generate", "a red fox running through snow",
        "--aspect-ratio", "9:16", "--duration", "5", "-o", "fox.mp4", "--poll-interval", "0.2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fox.mp4"
    with av.open(str(tmp_path / "fox.mp4")) as container:
        video = container.streams.video[0]
        assert (video.width, video.height) == (720, 1280)
        assert sum(1 for _ in container.decode(video)) == 30 * 5  # kling-v1 renders 30 fps


def test_submit_then_wait_show_list_download(server: RunningServer, tmp_path: Path) -> None:
    submitted = reelgate(server, tmp_path, "generate", "a kite", "--no-wait", "--json",
                         "--external-id", "cli-e2e-1", "--watermark")  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    task_id = json.loads(submitted.stdout)["task"]["task_id"]

    waited = reelgate(server, tmp_path, "tasks", "wait", "cli-e2e-1", "-o", "kite.mp4", "--json",
                      "--poll-interval", "0.2")  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["path"] == "kite.mp4"
    assert (tmp_path / "kite.mp4").stat().st_size > 1000

    shown = reelgate(server, tmp_path, "tasks", "show", task_id)
    assert "succeed" in shown.stdout and "cli-e2e-1" in shown.stdout
    listed = reelgate(server, tmp_path, "tasks", "list", "--json", "--page-size", "100")
    assert task_id in [t["task_id"] for t in json.loads(listed.stdout)]
    marked = reelgate(server, tmp_path, "tasks", "download", task_id, "--watermarked", "-o", "d/")
    assert marked.stdout.strip() == f"d/{task_id}-watermarked.mp4"


def test_errors_print_one_line_and_exit_non_zero(server: RunningServer, tmp_path: Path) -> None:
    result = reelgate(server, tmp_path, "generate", "x", "--model", "kling-v2-master", "--sound")
    assert result.returncode == 1
    assert result.stderr == "error [1201]: sound: on is not supported by kling-v2-master\n"
    missing = reelgate(server, tmp_path, "tasks", "show", "123456789012345678")
    assert missing.returncode == 1 and missing.stderr.startswith("error [1203]: ")


def test_ctrl_c_leaves_the_task_running(server: RunningServer, tmp_path: Path) -> None:
    process = subprocess.Popen(
        ["reelgate", "generate", "slow [[sandbox:slow=30]]", "--external-id", "ctrl-c",
         "-o", "slow.mp4", "--poll-interval", "0.1"],
        cwd=tmp_path,
        env=server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    with Client(server.base_url, api_key=server.credentials["api_key"]) as client:
        task = _created(client, "ctrl-c")
        # The command polls within milliseconds of the create; 2 s leave room for a busy machine
        # and still 28 s before the task could finish.
        time.sleep(2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 130, stderr
        assert f"task {task.id} keeps running" in stderr
        assert f"reelgate tasks wait {task.id} -o slow.mp4" in stderr
        assert not task.refresh().finished
    assert not (tmp_path / "slow.mp4").exists()


def _created(client: Client, external_id: str) -> Task:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            return client.text2video.get(external_id)
        except NotFoundError:
            time.sleep(0.05)
    raise AssertionError(f"no task {external_id!r} was created")
