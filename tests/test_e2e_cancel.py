"""Cancel against a real ``reelgate serve --realistic``: the CLI, both SDK clients, and the
callbacks a receiver gets."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from reelgate.callbacks.receiver import Receiver
from reelgate.client import AsyncClient, Client, TaskFailedError
from reelgate.domain.tasks import CANCELLED_BY_CLIENT

from .client_support import RunningServer
from .server import run_cli, running_server

pytestmark = pytest.mark.slow

# Under --realistic, the catalogue keys win over the preset: kling-v2-master waits ten minutes in
# submitted (the preset's tens of seconds could run out on a loaded machine before the test
# cancels its queued tasks), kling-v1 runs at once.
CATALOG = """
[[models]]
id = "kling-v2-master"
engine = "sandbox"
submitted_s = 600

[[models]]
id = "kling-v1"
engine = "sandbox"
submitted_s = 0
processing_s = 0
"""


# a webhook secret gives each event its webhook-id (retries of one event share it)
ENV = {"REELGATE_SHUTDOWN_GRACE": "1", "REELGATE_WEBHOOK_SECRET": "e2e-cancel"}


def reelgate(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["reelgate", *args], env=server.env(), capture_output=True, text=True, timeout=120
    )


def statuses(rx: Receiver, path: str) -> list[tuple[str, str, str]]:
    """The events ``path`` received, once each: delivery is at least once, and a retry of an
    event (an attempt that timed out on a loaded machine) carries the same ``webhook-id``."""
    seen: dict[str, tuple[str, str, str]] = {}
    for r in rx.to(path):
        p = r.payload
        seen.setdefault(
            r.headers["webhook-id"],
            (p["task_status"], p["task_status_msg"], p["final_unit_deduction"]),
        )
    return list(seen.values())


async def test_cancel_through_cli_and_sdk_with_callbacks(tmp_path: Path) -> None:
    catalog = tmp_path / "models.toml"
    catalog.write_text(CATALOG)
    args = ("--realistic", "--models", str(catalog), "--workers", "1")
    async with Receiver() as rx:
        with running_server(tmp_path / "data", *args, env=ENV) as sp:
            server = RunningServer(sp.base_url, sp.data_dir, sp.credentials())
            key = server.credentials["api_key"]
            with Client(server.base_url, api_key=key) as client:
                queued = client.text2video.create(
                    "a queued kite", model_name="kling-v2-master", callback_url=rx.url("/queued")
                )
                stalled = client.text2video.create(
                    "a lighthouse [[sandbox:stall]]",
                    model_name="kling-v1",
                    callback_url=rx.url("/stalled"),
                )
                quick = client.text2video.create("a quick kite", model_name="kling-v1")
                async_queued = client.text2video.create(
                    "another queued kite",
                    model_name="kling-v2-master",
                    external_task_id="e2e-cancel-async",
                )

                # a queued task, through the CLI
                assert queued.refresh().status == "submitted"
                out = await asyncio.to_thread(
                    reelgate, server, "tasks", "cancel", queued.id, "--json"
                )
                assert out.returncode == 0, out.stderr
                shown = json.loads(out.stdout)
                assert shown["task_status"] == "failed"
                assert shown["task_status_msg"] == CANCELLED_BY_CLIENT
                assert shown["final_unit_deduction"] == "0"

                # a running task, through the SDK handle; wait() then reports the failure
                deadline = time.monotonic() + 120
                while stalled.refresh().status != "processing":
                    assert time.monotonic() < deadline, stalled
                    await asyncio.sleep(0.2)
                assert stalled.cancel().status in ("processing", "failed")
                with pytest.raises(TaskFailedError, match="cancelled by the client"):
                    stalled.wait(timeout=120, poll_interval=0.2)
                assert stalled.failed and stalled.units == "0"

                # the slot the stalled task held runs the next one; a finished task refuses
                quick.wait(timeout=300, poll_interval=0.2)
                assert quick.succeeded
                out = await asyncio.to_thread(reelgate, server, "tasks", "cancel", quick.id)
                assert out.returncode != 0
                assert "1200" in out.stderr and "already finished as succeed" in out.stderr

            async with AsyncClient(server.base_url, api_key=key) as aclient:
                task = await aclient.text2video.cancel("e2e-cancel-async")
                assert task.id == async_queued.id and task.failed
                assert (await task.cancel()).failed  # idempotent

            await asyncio.wait_for(rx.wait_for_count(5), 60)
            assert statuses(rx, "/queued") == [
                ("submitted", "", "0"),
                ("failed", CANCELLED_BY_CLIENT, "0"),
            ]
            assert statuses(rx, "/stalled") == [
                ("submitted", "", "0"),
                ("processing", "", "0"),
                ("failed", CANCELLED_BY_CLIENT, "0"),
            ]


def test_serve_help_names_the_realistic_preset() -> None:
    out = run_cli("serve", "--help", env={"COLUMNS": "200"})
    assert "--realistic" in out and "REELGATE_REALISTIC" in out
