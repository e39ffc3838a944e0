"""``GET /metrics`` parses as Prometheus exposition and moves with traffic; JSON log lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from reelgate import logs
from reelgate.callbacks.receiver import Receiver
from reelgate.cli.runtime import build_app
from reelgate.settings import Settings

from .conftest import Api
from .helpers import assert_ok

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_requests_by_route_template_and_read_tasks_from_the_store(
    api: Api,
) -> None:
    before = await scrape(api.client)
    created = [
        assert_ok(await api.create({"model_name": "kling-v1", "prompt": f"fox {i}"}))
        for i in range(2)
    ]
    for data in created:
        path = f"/v1/videos/text2video/{data['task_id']}"
        assert_ok(await api.client.get(path, headers=api.key_headers))
    missing = await api.client.get("/v1/videos/text2video/nope", headers=api.key_headers)
    assert missing.status_code == 404
    assert (await api.client.get("/no/such/path/42")).status_code == 404
    after = await scrape(api.client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    create = {"route": "/v1/videos/text2video", "method": "POST"}
    one = {"route": "/v1/videos/text2video/{task_id:path}", "method": "GET"}
    assert moved("reelgate_http_requests_total", code="200", **create) == 2
    assert moved("reelgate_http_requests_total", code="200", **one) == 2
    assert moved("reelgate_http_requests_total", code="404", **one) == 1
    unmatched = {"route": "unmatched", "method": "GET", "code": "404"}
    assert moved("reelgate_http_requests_total", **unmatched) == 1
    # the raw path never becomes a label: bounded cardinality
    assert not any("nope" in str(labels) or "/42" in str(labels) for _, labels in after)
    assert moved("reelgate_http_request_duration_seconds_count", **create) == 2
    # the scrape itself is counted by the next one
    assert moved("reelgate_http_requests_total", route="/metrics", method="GET", code="200") == 1

    assert value(after, "reelgate_tasks", status="submitted", model="kling-v1") == 2
    assert value(after, "reelgate_queue_depth") == 2
    assert value(after, "reelgate_queue_oldest_age_seconds") >= 0


async def test_a_task_run_and_its_callbacks_move_the_worker_and_dispatcher_metrics(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", callback_allow_private=True)
    async with AsyncExitStack() as stack:
        app, store = await build_app(settings, stack, bootstrap=False)
        await stack.enter_async_context(app.router.lifespan_context(app))
        receiver = await stack.enter_async_context(Receiver())
        transport = httpx.ASGITransport(app=app)
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
        )
        creds = await store.create_account("metrics")
        headers = {"Authorization": f"Bearer {creds.api_key}"}
        before = await scrape(client)
        body = {"model_name": "kling-v1", "prompt": "a lighthouse", "callback_url": receiver.url()}
        task_id = assert_ok(await client.post("/v1/videos/text2video", json=body, headers=headers))[
            "task_id"
        ]
        async with asyncio.timeout(120):
            await receiver.wait_for_count(3)  # submitted, processing, succeed
        done = assert_ok(await client.get(f"/v1/videos/text2video/{task_id}", headers=headers))
        assert done["task_status"] == "succeed"
        # The dispatcher counts a delivery once the receiver has answered and the outcome is
        # stored: after the receiver saw the request. Wait for it (up to 30 s).
        delivered = {"outcome": "delivered"}
        sent = "reelgate_callback_deliveries_total"
        for _ in range(600):
            after = await scrape(client)
            if value(after, sent, **delivered) - value(before, sent, **delivered) >= 3:
                break
            await asyncio.sleep(0.05)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("reelgate_task_run_seconds_count", model="kling-v1") == 1
    assert moved("reelgate_task_run_seconds_sum", model="kling-v1") > 0
    assert moved("reelgate_callback_deliveries_total", outcome="delivered") == 3
    assert value(after, "reelgate_tasks", status="succeed", model="kling-v1") == 1
    assert value(after, "reelgate_queue_depth") == 0


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_json_log_line_written_during_a_request_carries_its_request_id(
    api: Api,
) -> None:
    stream = io.StringIO()
    handler = logs.log_handler("json", stream)
    probe = logging.getLogger("reelgate.probe")
    probe.addHandler(handler)
    probe.setLevel(logging.INFO)
    app = api.client._transport.app  # type: ignore[attr-defined]

    @app.get("/probe-log")  # type: ignore[misc]
    async def probe_log() -> dict[str, str]:
        probe.info("inside the request")
        return {}

    try:
        response = await api.client.get("/probe-log")
        probe.info("outside any request")
    finally:
        probe.removeHandler(handler)
    inside, outside = json_lines(stream)
    assert inside["message"] == "inside the request"
    assert inside["request_id"] == response.headers["x-request-id"]
    assert inside["level"] == "info" and inside["logger"] == "reelgate.probe"
    assert "request_id" not in outside


async def test_a_json_log_line_of_a_task_carries_its_task_id() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("reelgate.probe.task")
    handler = logs.log_handler("json", stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    async def run(task_id: str) -> None:  # as the worker does for each task it runs
        logs.task_id_var.set(task_id)
        await asyncio.sleep(0)
        logger.warning("working")

    try:
        await asyncio.gather(run("t-1"), run("t-2"))
        try:
            raise OSError("disk")
        except OSError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second, failed = json_lines(stream)
    assert {first["task_id"], second["task_id"]} == {"t-1", "t-2"}
    assert "task_id" not in failed and "OSError: disk" in str(failed["exception"])


def test_log_format_is_text_or_json() -> None:
    import pytest

    assert Settings().log_format == "text"
    with pytest.raises(ValueError, match="REELGATE_LOG_FORMAT='xml' is not text or json"):
        Settings.from_env({"REELGATE_LOG_FORMAT": "xml"})


def test_logs_and_metrics_are_leaves() -> None:
    """Every layer may count and log, so these two import nothing of reelgate."""
    import ast

    import reelgate

    package = Path(reelgate.__file__).parent
    for name in ("logs.py", "metrics.py"):
        tree = ast.parse((package / name).read_text())
        imported = [
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        ]
        assert not [m for m in imported if m and m.startswith("reelgate")], name
