"""Gateway mode end to end (issue 10): reelgate B forwards to reelgate A, both real servers.

A runs the sandbox and plays the provider; B serves two ``upstream`` entries pointing at A:
one with an AK/SK pair created on A (a JWT per request, secret from an env var), one with an
API key under A's ``/kling`` prefix.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from reelgate.callbacks.receiver import Receiver

from .helpers import assert_ok
from .live import serving
from .server import run_cli, running_server
from .upstream_provider import VIDEO, FakeProvider

pytestmark = pytest.mark.slow

CREATE = "/v1/videos/text2video"


def gateway_catalogue(path: Path, provider: str, keys: dict[str, str]) -> Path:
    path.write_text(
        f"""
[[models]]
id = "gw-jwt"
engine = "upstream"
base_url = "{provider}"
model_name = "kling-v1"
access_key = "{keys["access_key"]}"
secret_key_env = "PROVIDER_SK"
concurrency = 4
poll_min_s = 0.2

[[models]]
id = "gw-key"
engine = "upstream"
base_url = "{provider}/kling"
model_name = "kling-v1"
api_key_env = "PROVIDER_API_KEY"
poll_min_s = 0.2
"""
    )
    return path


async def test_tasks_on_both_prefixes_finish_through_the_provider(tmp_path: Path) -> None:
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    run_cli("db", "upgrade", "--data-dir", str(a_dir))
    keys = json.loads(run_cli("keys", "create", "--name", "gw", "--data-dir", str(a_dir), "--json"))
    env = {"PROVIDER_SK": keys["secret_key"], "PROVIDER_API_KEY": keys["api_key"]}
    async with Receiver() as rx:
        with running_server(a_dir) as a:
            catalogue = gateway_catalogue(tmp_path / "models.toml", a.base_url, keys)
            with running_server(b_dir, "--models", str(catalogue), env=env) as b:
                headers = {"Authorization": f"Bearer {b.credentials()['api_key']}"}
                async with httpx.AsyncClient(base_url=b.base_url, headers=headers) as client:
                    ids = {}
                    for prefix, model in (("", "gw-jwt"), ("/kling", "gw-key")):
                        r = await client.post(
                            f"{prefix}{CREATE}",
                            json={
                                "model_name": model,
                                "prompt": f"a lighthouse via {model}",
                                "callback_url": rx.url(f"/{model}"),
                                "external_task_id": f"mine-{model}",
                                "watermark_info": {"enabled": True},
                            },
                        )
                        ids[model] = assert_ok(r)["task_id"]
                    for model in ids:
                        await asyncio.wait_for(rx.wait_for_count(3, f"/{model}"), 120)
                    finals = {}
                    for prefix, model in (("", "gw-jwt"), ("/kling", "gw-key")):
                        finals[model] = assert_ok(
                            await client.get(f"{prefix}{CREATE}/{ids[model]}")
                        )
                    a_headers = {"Authorization": f"Bearer {keys['api_key']}"}
                    async with httpx.AsyncClient(base_url=a.base_url, headers=a_headers) as on_a:
                        upstream = {
                            t["task_info"].get("external_task_id"): t
                            for t in assert_ok(await on_a.get(CREATE))
                        }
                        for model, final in finals.items():
                            assert final["task_status"] == "succeed", (final, b.log())
                            theirs = upstream[f"reelgate-{ids[model]}"]
                            assert theirs["task_status"] == "succeed"
                            (ours_video,) = final["task_result"]["videos"]
                            (their_video,) = theirs["task_result"]["videos"]
                            # links are B's, the bytes are A's
                            assert ours_video["url"].startswith(b.base_url)
                            assert "/files/" in ours_video["url"]
                            assert a.base_url not in json.dumps(final)
                            mine = (await client.get(ours_video["url"])).content
                            assert mine == (await on_a.get(their_video["url"])).content
                            assert len(mine) > 1000
                            marked = (await client.get(ours_video["watermark_url"])).content
                            assert marked == (await on_a.get(their_video["watermark_url"])).content
                            assert final["final_unit_deduction"] == theirs["final_unit_deduction"]
                            assert final["task_info"] == {"external_task_id": f"mine-{model}"}
                        assert len(upstream) == 2  # each submitted once
    for model, task_id in ids.items():
        statuses = [r.payload["task_status"] for r in rx.to(f"/{model}")]
        assert statuses == ["submitted", "processing", "succeed"]
        assert all(r.payload["task_id"] == task_id for r in rx.to(f"/{model}"))
    # A never saw the client's callback URL nor its external id
    with sqlite3.connect(a_dir / "reelgate.db") as db:
        rows = db.execute("SELECT callback_url, external_task_id, params FROM tasks").fetchall()
    assert len(rows) == 2
    for callback_url, external, params in rows:
        assert callback_url is None and external.startswith("reelgate-")
        assert "mine-" not in params and rx.url("") not in params


def test_a_worker_killed_between_submit_and_record_never_submits_twice(
    tmp_path: Path,
) -> None:
    """The provider records the submission but holds its answer; B is SIGKILLed right then.
    Restarted, B's worker finds "submitting", asks the provider for the idempotency id, and
    tracks the task it finds: one submission upstream, one finished task."""
    provider = FakeProvider(finish_s=0.5)
    provider.hold_submit.set()
    b_dir = tmp_path / "b"
    env = {"REELGATE_LEASE_SECONDS": "2"}
    with serving(provider.app) as provider_url:
        provider.base_url = provider_url
        catalogue = tmp_path / "models.toml"
        catalogue.write_text(
            f"""
[[models]]
id = "gw"
engine = "upstream"
base_url = "{provider_url}"
model_name = "kling-v1"
api_key = "{provider.api_key}"
poll_min_s = 0.2
"""
        )
        with running_server(b_dir, "--models", str(catalogue), env=env) as b:
            headers = {"Authorization": f"Bearer {b.credentials()['api_key']}"}
            r = httpx.post(
                f"{b.base_url}{CREATE}",
                json={"model_name": "gw", "prompt": "kill me softly"},
                headers=headers,
            )
            task_id = assert_ok(r)["task_id"]
            for _ in range(600):
                if provider.submissions:
                    break
                time.sleep(0.05)
            assert provider.submissions == 1, b.log()
            b.proc.kill()  # SIGKILL: "submitted upstream", not yet "recorded"
            b.proc.wait()
        provider.release.set()
        with (
            running_server(b_dir, "--models", str(catalogue), env=env) as b,
            httpx.Client(base_url=b.base_url, headers=headers) as client,
        ):
            for _ in range(600):
                task = assert_ok(client.get(f"{CREATE}/{task_id}"))
                if task["task_status"] in ("succeed", "failed"):
                    break
                time.sleep(0.1)
            assert task["task_status"] == "succeed", (task, b.log())
            (video,) = task["task_result"]["videos"]
            assert (client.get(video["url"])).content == VIDEO
    assert provider.requests["create"] == 1 and provider.submissions == 1
    assert provider.requests["query"] >= 2  # the reconcile by external id, then tracking


def test_the_providers_callback_makes_b_poll_at_once(tmp_path: Path) -> None:
    """B polls once right after submitting, then not for 8 minutes (``poll_min_s`` 300): only
    A's callbacks to B's own hook URL (never the client's) can make the task finish."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    run_cli("db", "upgrade", "--data-dir", str(a_dir))
    keys = json.loads(run_cli("keys", "create", "--name", "gw", "--data-dir", str(a_dir), "--json"))
    with running_server(a_dir) as a:
        catalogue = tmp_path / "models.toml"
        catalogue.write_text(
            f"""
[[models]]
id = "gw"
engine = "upstream"
base_url = "{a.base_url}"
model_name = "kling-v1"
api_key = "{keys["api_key"]}"
callback = true
poll_min_s = 300
poll_max_s = 600
"""
        )
        with (
            running_server(b_dir, "--models", str(catalogue)) as b,
            httpx.Client(
                base_url=b.base_url,
                headers={"Authorization": f"Bearer {b.credentials()['api_key']}"},
            ) as client,
        ):
            created = client.post(CREATE, json={"model_name": "gw", "prompt": "a lighthouse"})
            task_id = assert_ok(created)["task_id"]
            for _ in range(900):
                task = assert_ok(client.get(f"{CREATE}/{task_id}"))
                if task["task_status"] in ("succeed", "failed"):
                    break
                time.sleep(0.1)
            assert task["task_status"] == "succeed", (task, b.log())
            bad = client.post(f"/v1/_upstream/callback/{task_id}?token=forged", json={})
            assert bad.status_code == 401 and bad.json()["code"] == 1002
    with sqlite3.connect(a_dir / "reelgate.db") as db:
        (hook,) = db.execute("SELECT callback_url FROM tasks").fetchone()
    assert hook.startswith(f"{b.base_url}/v1/_upstream/callback/{task_id}?token=")
