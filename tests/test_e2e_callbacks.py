"""Callbacks from a real `reelgate serve` to a real receiver on loopback (issue 3)."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from pathlib import Path

import httpx
import pytest

from reelgate.callbacks import verify_signature
from reelgate.callbacks.receiver import Receiver

from .helpers import assert_ok
from .server import REELGATE, reelgate_env, running_server, stop

pytestmark = pytest.mark.slow

FIELDS = {
    "task_id",
    "task_status",
    "task_status_msg",
    "task_info",
    "task_result",
    "final_unit_deduction",
    "created_at",
    "updated_at",
}


async def test_every_status_change_arrives_in_order_signed_and_retried(tmp_path: Path) -> None:
    secret = "whsec_" + base64.b64encode(b"reelgate-test-secret-0123456789").decode()
    env = {"REELGATE_WEBHOOK_SECRET": secret, "REELGATE_CALLBACK_BACKOFF": "0.2"}
    async with Receiver() as rx:
        rx.script("/flaky", "500", "500")  # then 200
        with running_server(tmp_path / "data", env=env) as server:
            headers = {"Authorization": f"Bearer {server.credentials()['api_key']}"}
            async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
                ids = {}
                for path in ("/hook", "/flaky"):
                    r = await client.post(
                        "/v1/videos/text2video",
                        json={
                            "prompt": f"waves for {path}",
                            "callback_url": rx.url(path),
                            "external_task_id": path.strip("/"),
                        },
                    )
                    ids[path] = assert_ok(r)["task_id"]
                await asyncio.wait_for(rx.wait_for_count(3, "/hook"), 90)
                await asyncio.wait_for(rx.wait_for_count(5, "/flaky"), 90)

    hook = rx.to("/hook")
    assert [r.payload["task_status"] for r in hook] == ["submitted", "processing", "succeed"]
    for received in hook:
        body = received.payload
        assert set(body) == FIELDS and "code" not in body  # flat, not enveloped
        assert body["task_id"] == ids["/hook"]
        assert body["task_info"] == {"external_task_id": "hook"}
        assert verify_signature(secret, received.headers, received.body)
        assert not verify_signature(secret, received.headers, received.body + b" ")
    final = hook[-1].payload
    assert final["final_unit_deduction"] == "1"
    (video,) = final["task_result"]["videos"]
    assert video["url"].startswith("http://127.0.0.1:") and "signature=" in video["url"]
    flaky = rx.to("/flaky")
    assert [r.answer for r in flaky] == ["500", "500", "200", "200", "200"]
    delivered = [r.payload["task_status"] for r in flaky if r.answer == "200"]
    assert delivered == ["submitted", "processing", "succeed"]
    assert flaky[0].headers["webhook-id"] == flaky[2].headers["webhook-id"]  # same event


def start_worker(data: Path) -> subprocess.Popen[bytes]:
    with (data / "worker.log").open("wb") as log:
        return subprocess.Popen(
            [*REELGATE, "worker", "--data-dir", str(data)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=reelgate_env(),
        )


async def test_a_standalone_worker_signs_nothing_links_follow_the_api(tmp_path: Path) -> None:
    """The worker finishes the task; the API's dispatcher renders the callback with links
    under the base the task was created through (never the worker's http://127.0.0.1:8000)."""
    data = tmp_path / "data"
    async with Receiver() as rx:
        with running_server(data, "--no-worker") as server:
            worker = start_worker(data)
            try:
                headers = {"Authorization": f"Bearer {server.credentials()['api_key']}"}
                async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as c:
                    r = await c.post(
                        "/v1/videos/text2video",
                        json={"prompt": "a quiet street", "callback_url": rx.url()},
                    )
                    assert_ok(r)
                    await asyncio.wait_for(rx.wait_for_count(3), 120)
            finally:
                stop(worker)
    final = rx.requests[-1].payload
    assert final["task_status"] == "succeed", (data / "worker.log").read_text()
    (video,) = final["task_result"]["videos"]
    assert video["url"].startswith(f"{server.base_url}/files/"), video["url"]
