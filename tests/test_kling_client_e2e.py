"""Replays what Kling's first-party Python client (and ComfyUI's Kling node) sends, against a real
``reelgate serve``: raw httpx, no reelgate SDK.

That client mints a PyJWT token with header ``{"alg": "HS256", "typ": "JWT"}`` and payload
``iss``/``exp``/``nbf``, POSTs every field it knows (``cfg_scale`` included, whatever the model),
treats anything but HTTP 200 with a ``data`` member as an error, GETs the task by id every second
until it leaves submitted/processing, then downloads ``task_result.videos[0].url``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from .server import ServerProcess, running_server

pytestmark = pytest.mark.slow

PATH = "/v1/videos/text2video"
POLL_INTERVAL = 1.0  # the client's default
WAIT_LIMIT = 600.0  # generous: the machine is shared; the loop ends as soon as the task does


class KlingStyleClient:
    """The first-party client's request flow, step for step."""

    def __init__(self, base_url: str, access_key: str, secret_key: str, ttl: int = 1800) -> None:
        now = int(time.time())
        headers = {"alg": "HS256", "typ": "JWT"}
        payload = {"iss": access_key, "exp": now + ttl, "nbf": now - 5}
        self.token = jwt.encode(payload, secret_key, headers=headers)
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            timeout=httpx.Timeout(30),
        )

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        resp = self.http.request(method, path, **kwargs)
        # the client's _raise_for_status
        assert resp.status_code == 200 and "data" in resp.json(), resp.text
        body: dict[str, Any] = resp.json()
        return body

    def run(self, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        created = self.request("POST", PATH, json=body)["data"]
        deadline = time.monotonic() + WAIT_LIMIT
        info: dict[str, Any] | None = None
        while info is None or info["task_status"] in ("submitted", "processing"):
            assert time.monotonic() < deadline, f"task still {info and info['task_status']}"
            time.sleep(POLL_INTERVAL)
            info = self.request("GET", f"{PATH}/{created['task_id']}")["data"]
        return created, info


def kling_client_body(model_name: str) -> dict[str, Any]:
    """Exactly the fields that client sets for text-to-video without camera control."""
    return {
        "model_name": model_name,
        "prompt": "a red fox running through snow at dawn",
        "negative_prompt": "",
        "cfg_scale": 0.5,
        "mode": "std",
        "aspect_ratio": "16:9",
        "duration": "5",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("kling-client") / "data") as served:
        yield served


@pytest.mark.parametrize(
    ("model_name", "units"),
    [("kling-v2-master", "10"), ("kling-v2-5-turbo", "1.5"), ("kling-v2-6", "1.5")],
)
def test_kling_first_party_client_flow(
    server: ServerProcess, model_name: str, units: str, tmp_path: Path
) -> None:
    creds = server.credentials()
    client = KlingStyleClient(server.base_url, creds["access_key"], creds["secret_key"])
    assert jwt.get_unverified_header(client.token) == {"alg": "HS256", "typ": "JWT"}
    with client.http:
        created, info = client.run(kling_client_body(model_name))

    assert created["task_status"] == "submitted" and created["task_info"] == {}
    assert info["task_id"] == created["task_id"]
    assert info["task_status"] == "succeed", info
    assert info["task_status_msg"] == ""
    assert info["final_unit_deduction"] == units
    (video,) = info["task_result"]["videos"]
    assert video["duration"] == "5"

    with httpx.Client(timeout=30) as plain:  # the video link carries its own signature
        download = plain.get(video["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "video/mp4"
    assert download.content[4:8] == b"ftyp" and len(download.content) > 10_000
    (tmp_path / f"{created['task_id']}.mp4").write_bytes(download.content)
