"""Tiny random-weight Wan and LTX served through a catalogue file by a real `reelgate serve`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
import av
import httpx

from ..helpers import assert_error, assert_ok
from ..server import run_cli, running_server
from .tiny_models import build_tiny_ltx, build_tiny_wan

pytestmark = [pytest.mark.diffusers, pytest.mark.slow]

CREATE = "/v1/videos/text2video"

CATALOG = """
[[models]]
id = "tiny-wan"
engine = "diffusers"
weights = "{wan}"
aliases = ["kling-v2-5-turbo"]
device = "cpu"
durations = [1, 2]
[models.profiles.std]
fps = 8
steps = 2
max_sequence_length = 16
sizes = {{ "16:9" = [64, 32], "9:16" = [32, 64], "1:1" = [32, 32] }}
[models.profiles.pro]
fps = 8
steps = 2
max_sequence_length = 16
sizes = {{ "16:9" = [80, 48], "9:16" = [48, 80], "1:1" = [48, 48] }}

[[models]]
id = "tiny-ltx"
engine = "diffusers"
weights = "{ltx}"
device = "cpu"
durations = [1, 2]
[models.profiles.std]
short_side = 32
fps = 8
steps = 2
max_sequence_length = 16

[[models]]
id = "kling-v1"
engine = "sandbox"
like = "kling-v1"

[[models]]
id = "broken"
engine = "diffusers"
weights = "{missing}"
family = "wan2.1-1.3b"
device = "cpu"
[models.profiles.std]
fps = 8
steps = 2
sizes = {{ "16:9" = [64, 32], "9:16" = [32, 64], "1:1" = [32, 32] }}
"""


def _decode(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return stream.codec_context.width, stream.codec_context.height, frames


def _wait(client: httpx.Client, task_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = assert_ok(client.get(f"{CREATE}/{task_id}"))
        if task["task_status"] in ("succeed", "failed"):
            return task
        time.sleep(0.3)
    raise AssertionError(f"task {task_id} did not finish")


def test_catalogue_models_run_end_to_end(tmp_path: Path) -> None:
    catalog = tmp_path / "models.toml"
    catalog.write_text(
        CATALOG.format(
            wan=build_tiny_wan(tmp_path / "wan"),
            ltx=build_tiny_ltx(tmp_path / "ltx"),
            missing=tmp_path / "no-such-weights",
        )
    )
    listed = run_cli("models", "list", "--models", str(catalog), "--json")
    assert '"tiny-wan"' in listed and '"kling-v2-5-turbo"' in listed
    with running_server(
        tmp_path / "data", "--models", str(catalog), "--workers", "1", startup_timeout=120
    ) as server:
        headers = {"Authorization": f"Bearer {server.credentials()['api_key']}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            models = {m["id"]: m for m in assert_ok(client.get("/v1/models"))}
            assert models["tiny-wan"]["aliases"] == ["kling-v2-5-turbo"]
            assert set(models) == {"tiny-wan", "tiny-ltx", "kling-v1", "broken"}
            # unsupported parameters are refused naming the model
            r = client.post(
                CREATE, json={"prompt": "x", "model_name": "tiny-wan", "duration": 1, "sound": "on"}
            )
            assert_error(r, 400, 1201, "tiny-wan")
            r = client.post(
                CREATE,
                json={
                    "prompt": "x",
                    "model_name": "tiny-ltx",
                    "duration": 1,
                    "camera_control": {"type": "down_back"},
                },
            )
            assert_error(r, 400, 1201, "camera_control", "tiny-ltx")
            assert_error(
                client.post(CREATE, json={"prompt": "x", "model_name": "tiny-wan", "duration": 5}),
                400,
                1201,
                "duration",
            )
            cases = [
                # body, expected (width, height, frames)
                ({"model_name": "kling-v2-5-turbo", "duration": 1}, (64, 32, 9)),
                (
                    {
                        "model_name": "tiny-wan",
                        "mode": "pro",
                        "aspect_ratio": "9:16",
                        "duration": 2,
                        "watermark_info": {"enabled": True},
                    },
                    (48, 80, 17),
                ),
                (
                    {
                        "model_name": "tiny-ltx",
                        "duration": 2,
                        "cfg_scale": 0.8,
                        "negative_prompt": "blurry",
                    },
                    (64, 32, 17),
                ),
            ]
            ids = [
                assert_ok(client.post(CREATE, json={"prompt": "a small boat", **body}))["task_id"]
                for body, _ in cases
            ]
            broken = assert_ok(
                client.post(CREATE, json={"prompt": "x", "model_name": "broken", "duration": 5})
            )["task_id"]
            for task_id, (body, expected) in zip(ids, cases, strict=True):
                task = _wait(client, task_id)
                assert task["task_status"] == "succeed", task
                assert isinstance(task["seed"], int)
                (video,) = task["task_result"]["videos"]
                clip = tmp_path / f"{task_id}.mp4"
                clip.write_bytes(httpx.get(video["url"], timeout=30).content)
                assert _decode(clip) == expected, body
                if "watermark_info" in body:
                    assert video["watermark_url"]
            failed = _wait(client, broken)
            assert failed["task_status"] == "failed"
            assert "broken" in failed["task_status_msg"] and "load" in failed["task_status_msg"]
            health = assert_ok(client.get("/healthz"))["models"]
            assert health["tiny-wan"].startswith("ready") and health["broken"].startswith("failed")
