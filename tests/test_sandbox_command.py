"""`reelgate sandbox` as a client project's CI runs it: fixed credentials, a free port,
temporary state, fidelity profiles, the pytest plugin, and a release that crosses processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from reelgate.testing import SandboxServer

from .helpers import mint_jwt
from .server import REELGATE, reelgate_env, running_server, stop

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[1] / "src"
WAIT_S = 120.0


def _post(server: SandboxServer, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/videos/text2video",
        json=body,
        headers={"Authorization": f"Bearer {token or server.api_key}"},
        timeout=30,
    )


def _wait(base_url: str, token: str, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        data: dict[str, Any] = httpx.get(
            f"{base_url}/v1/videos/text2video/{task_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()["data"]
        if data["task_status"] in ("succeed", "failed") or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


def test_fixed_printed_credentials_free_port_and_state_removed_on_exit() -> None:
    started = time.monotonic()
    server = SandboxServer.start()
    ready_s = time.monotonic() - started
    print(f"reelgate sandbox ready in {ready_s:.2f} s")  # reported, not asserted: load varies
    data_dir = Path(server.info["data_dir"])
    try:
        assert (server.api_key, server.access_key) == ("rg-sandbox", "AKsandbox")
        assert server.base_url.startswith("http://127.0.0.1:")
        assert (data_dir / "credentials.json").is_file()
        jwt = mint_jwt(server.access_key, server.secret_key)
        for token in (server.api_key, jwt):
            assert _post(server, {"prompt": "a fox"}, token).json()["code"] == 0
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert not data_dir.exists()


def test_credentials_given_by_flags() -> None:
    flags = [
        "--api-key",
        "my-key",
        "--access-key",
        "AKmine",
        "--secret-key",
        "a-secret-of-at-least-thirty-two-bytes",
    ]
    server = SandboxServer.start(extra=[*flags, "--admin-key", "adm"])
    try:
        assert (server.api_key, server.access_key, server.admin_key) == ("my-key", "AKmine", "adm")
        assert (
            _post(
                server,
                {"prompt": "a fox"},
                mint_jwt("AKmine", "a-secret-of-at-least-thirty-two-bytes"),
            ).status_code
            == 200
        )
        assert _post(server, {"prompt": "a fox"}, "rg-sandbox").json()["code"] == 1002
        assert server.fired() == []  # the admin key given works
    finally:
        server.stop()


def test_a_bad_profile_or_scenarios_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text('[[scenarios]]\nname = "x"\nrefuse = 42\n')
    for args in (["--profile", "openai"], ["--scenarios", str(bad)]):
        out = subprocess.run(
            [*REELGATE, "sandbox", "--port", "0", *args],
            capture_output=True,
            text=True,
            env=reelgate_env(),
            timeout=60,
        )
        assert out.returncode == 2
        assert "unknown profile" in out.stderr or "42 is not a code" in out.stderr


def _video_size(url: str, tmp_path: Path) -> tuple[int, int]:
    path = tmp_path / "clip.mp4"
    path.write_bytes(httpx.get(url, timeout=30).content)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def test_profiles_kling_and_cometapi(tmp_path: Path) -> None:
    comet = SandboxServer.start(profile="cometapi")
    kling = SandboxServer.start()
    try:
        for server, prompt_max, negative_max in ((kling, 2500, 2500), (comet, 500, 200)):
            ok = _post(server, {"prompt": "x" * prompt_max, "negative_prompt": "y" * negative_max})
            assert ok.status_code == 200, ok.text
            over = _post(server, {"prompt": "x" * (prompt_max + 1)}).json()
            assert over["code"] == 1201 and f"at most {prompt_max} characters" in over["message"]
            over = _post(server, {"prompt": "x", "negative_prompt": "y" * (negative_max + 1)})
            assert over.json()["code"] == 1201 and "negative_prompt" in over.json()["message"]
        refused = _post(kling, {"prompt": "a fox", "aspect_ratio": "4:3"}).json()
        assert (
            refused["code"] == 1201 and "aspect_ratio: 4:3 is not supported" in refused["message"]
        )
        task_id = _post(comet, {"prompt": "a fox", "aspect_ratio": "4:3"}).json()["data"]["task_id"]
        data = _wait(comet.base_url, comet.api_key, task_id)
        assert data["task_status"] == "succeed"
        assert _video_size(data["task_result"]["videos"][0]["url"], tmp_path) == (960, 720)
        extra = {"4:3", "3:4", "3:2", "2:3"}
        for server, has_extra in ((kling, False), (comet, True)):
            headers = {"Authorization": f"Bearer {server.api_key}"}
            models = httpx.get(f"{server.base_url}/v1/models", headers=headers).json()["data"]
            assert all(
                (extra <= set(m["capabilities"]["aspect_ratios"])) is has_extra for m in models
            )
            schema = httpx.get(f"{server.base_url}/openapi.json").json()
            enum = schema["components"]["schemas"]["Text2VideoRequest"]["properties"][
                "aspect_ratio"
            ]
            assert (extra <= set(enum["enum"])) is has_extra
    finally:
        comet.stop()
        kling.stop()


def test_a_client_project_uses_the_pytest_plugin(tmp_path: Path) -> None:
    (tmp_path / "scenarios.toml").write_text(
        '[[scenarios]]\nname = "hold"\nprompt = "hold on"\nstall = true\n'
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nreelgate_scenarios = scenarios.toml\n")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["reelgate.testing"]\n')
    (tmp_path / "test_my_integration.py").write_text(
        textwrap.dedent(
            """
            import reelgate

            def test_my_app_gets_a_video(reelgate_client, tmp_path):
                task = reelgate_client.text2video.create("a lighthouse at dusk")
                task.wait(timeout=120)
                assert task.succeeded
                assert task.download(tmp_path).stat().st_size > 0

            def test_my_app_sees_a_stalled_task(reelgate_client, reelgate_sandbox):
                assert isinstance(reelgate_client, reelgate.Client)
                task = reelgate_client.text2video.create("hold on")
                while task.refresh().status != "processing":
                    pass
                reelgate_sandbox.release(task.id)
                assert task.wait(timeout=120).succeeded
                assert [f["scenario"] for f in reelgate_sandbox.fired()] == ["hold"]
            """
        )
    )
    env = {
        **reelgate_env(),
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout


def test_a_release_reaches_a_worker_in_another_process(tmp_path: Path) -> None:
    admin = "adm-cross"
    env = {"REELGATE_SANDBOX_ADMIN_KEY": admin}
    with running_server(tmp_path / "data", "--no-worker", env=env) as server:
        key = server.credentials()["api_key"]
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen(
            [*REELGATE, "worker", "--data-dir", str(tmp_path / "data")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=reelgate_env(env),
        )
        try:
            created = httpx.post(
                f"{server.base_url}/v1/videos/text2video",
                json={"prompt": "[[sandbox:stall]] a fox"},
                headers={"Authorization": f"Bearer {key}"},
            ).json()["data"]
            get = f"{server.base_url}/v1/videos/text2video/{created['task_id']}"
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                data = httpx.get(get, headers={"Authorization": f"Bearer {key}"}).json()["data"]
                if data["task_status"] == "processing":
                    break
                time.sleep(0.1)
            assert data["task_status"] == "processing"
            released = httpx.post(
                f"{server.base_url}/_sandbox/tasks/{created['task_id']}/release",
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert released.status_code == 200, released.text
            assert _wait(server.base_url, key, created["task_id"])["task_status"] == "succeed"
        finally:
            stop(worker)  # type: ignore[arg-type]
            log.close()
