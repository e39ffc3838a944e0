"""The Kling emulator through HTTP as a client sees it: a real ``reelgate sandbox`` process
with a scenarios file, every scenario type and every ``/_sandbox`` control route."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from reelgate.callbacks.receiver import Receiver
from reelgate.client import Client
from reelgate.client.retry import Retry
from reelgate.domain.scenarios import CONTENT_POLICY_FAILURE, SIMULATED_FAILURE
from reelgate.testing import SandboxError, SandboxServer

pytestmark = pytest.mark.slow

SCENARIOS = """
[[scenarios]]
name = "busy"
external_task_id_prefix = "busy-"
refuse = 1303
times = 2
retry_after = 1

[[scenarios]]
name = "moderated"
prompt = "forbidden fruit"
fail = "content_policy"

[[scenarios]]
name = "regex-fail"
prompt_regex = "^doomed \\\\d+$"
fail = true

[[scenarios]]
name = "stalled"
prompt = "wait for me"
stall = true

[[scenarios]]
name = "slow"
slow = 2

[[scenarios]]
name = "glacial"
slow = 3600

[[scenarios]]
name = "twice"
callbacks = "twice"

[[scenarios]]
name = "shuffled"
callbacks = "out_of_order"

[[scenarios]]
name = "short-links"
link_ttl = 1

[[scenarios]]
name = "crashing"
crash = true

[[scenarios]]
name = "gpu"
fail = "GPU fell off the bus"
"""
REFUSALS = {1301: 400, 1302: 429, 1303: 429, 1102: 429, 1103: 403, 5000: 500, 5001: 503}
SCENARIOS += "".join(
    f'\n[[scenarios]]\nname = "refuse-{code}"\nrefuse = {code}\n' for code in REFUSALS
)
WAIT_S = 120.0  # generous: the machine may be loaded


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    path = tmp_path_factory.mktemp("scenarios") / "scenarios.toml"
    path.write_text(SCENARIOS)
    server = SandboxServer.start(scenarios=path)
    try:
        yield server
    finally:
        server.stop()


def _headers(sandbox: SandboxServer, scenario: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {sandbox.api_key}"}
    if scenario is not None:
        headers["X-Reelgate-Scenario"] = scenario
    return headers


def create(sandbox: SandboxServer, body: dict[str, Any], scenario: str | None = None) -> Any:
    response = httpx.post(
        f"{sandbox.base_url}/v1/videos/text2video",
        json=body,
        headers=_headers(sandbox, scenario),
        timeout=30,
    )
    return response


def get(sandbox: SandboxServer, task_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{sandbox.base_url}/v1/videos/text2video/{task_id}",
        headers=_headers(sandbox),
        timeout=30,
    )
    data: dict[str, Any] = response.json()["data"]
    return data


def wait_for(sandbox: SandboxServer, task_id: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        data = get(sandbox, task_id)
        if data["task_status"] in statuses or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


def started(sandbox: SandboxServer, body: dict[str, Any], scenario: str | None = None) -> str:
    """Create a task and wait until a worker runs it; its id."""
    response = create(sandbox, body, scenario)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"]["task_id"]
    assert wait_for(sandbox, task_id, {"processing"})["task_status"] == "processing"
    return task_id


def fired_for(sandbox: SandboxServer, task_id: str) -> list[str]:
    return [
        f"{f['scenario']}:{f['outcome']}" for f in sandbox.fired() if f.get("task_id") == task_id
    ]


# --- refusals at create ---------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status"), sorted(REFUSALS.items()))
def test_refuse_scenarios_answer_the_contract_error(
    sandbox: SandboxServer, code: int, status: int
) -> None:
    response = create(sandbox, {"prompt": "a fox"}, f"refuse-{code}")
    body = response.json()
    assert (response.status_code, body["code"]) == (status, code)
    assert f"refuse-{code}" in body["message"] and body["request_id"]
    assert "data" not in body
    assert "retry-after" not in response.headers
    assert any(
        f["scenario"] == f"refuse-{code}" and f["outcome"] == f"refused {code}"
        for f in sandbox.fired()
    )


def test_a_client_following_klings_retry_guidance_gets_past_the_1303_scenario(
    sandbox: SandboxServer,
) -> None:
    # The raw answer first: 429, 1303, Retry-After from the rule.
    raw = create(sandbox, {"prompt": "a fox", "external_task_id": "busy-raw"})
    assert (raw.status_code, raw.json()["code"]) == (429, 1303)
    assert raw.headers["retry-after"] == "1"
    # The rule refuses its first two creates; the SDK backs off on 1303 and gets through.
    before = len([f for f in sandbox.fired() if f["scenario"] == "busy"])
    assert before == 1
    with Client(sandbox.base_url, api_key=sandbox.api_key, retry=Retry(max_retries=4)) as client:
        task = client.text2video.create("a fox", external_task_id="busy-sdk").wait(WAIT_S)
    assert task.succeeded
    outcomes = [f["outcome"] for f in sandbox.fired() if f["scenario"] == "busy"]
    assert outcomes == ["refused 1303", "refused 1303", "accepted"]


def test_an_unknown_scenario_header_is_1201(sandbox: SandboxServer) -> None:
    response = create(sandbox, {"prompt": "a fox"}, "no-such-thing")
    body = response.json()
    assert (response.status_code, body["code"]) == (400, 1201)
    assert "X-Reelgate-Scenario" in body["message"] and "busy" in body["message"]


def test_a_bad_request_is_refused_for_what_it_is_before_any_scenario(
    sandbox: SandboxServer,
) -> None:
    response = create(sandbox, {"prompt": "a fox", "duration": "7"}, "refuse-1303")
    assert (response.status_code, response.json()["code"]) == (400, 1201)


# --- failures -------------------------------------------------------------------------------


def test_content_policy_failure_matched_by_prompt_substring(sandbox: SandboxServer) -> None:
    task_id = create(sandbox, {"prompt": "A Forbidden Fruit, still life"}).json()["data"]["task_id"]
    data = wait_for(sandbox, task_id, {"succeed", "failed"})
    assert data["task_status"] == "failed"
    assert data["task_status_msg"] == CONTENT_POLICY_FAILURE
    assert data["final_unit_deduction"] == "0"
    assert fired_for(sandbox, task_id) == ["moderated:applied"]


def test_failure_matched_by_prompt_regex(sandbox: SandboxServer) -> None:
    task_id = create(sandbox, {"prompt": "doomed 42"}).json()["data"]["task_id"]
    data = wait_for(sandbox, task_id, {"succeed", "failed"})
    assert (data["task_status"], data["task_status_msg"]) == ("failed", SIMULATED_FAILURE)
    ok = create(sandbox, {"prompt": "doomed 42 times"}).json()["data"]["task_id"]
    assert wait_for(sandbox, ok, {"succeed", "failed"})["task_status"] == "succeed"
    assert fired_for(sandbox, ok) == []


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("crashing", "engine error: RuntimeError: sandbox: simulated crash"),
        ("gpu", "GPU fell off the bus"),
    ],
)
def test_a_crashing_engine_and_a_failure_message_of_ones_own(
    sandbox: SandboxServer, scenario: str, message: str
) -> None:
    task_id = create(sandbox, {"prompt": "a fox"}, scenario).json()["data"]["task_id"]
    data = wait_for(sandbox, task_id, {"succeed", "failed"})
    assert (data["task_status"], data["task_status_msg"]) == ("failed", message)
    assert fired_for(sandbox, task_id) == [f"{scenario}:applied"]


def test_prompt_directives_are_scenarios_too(sandbox: SandboxServer) -> None:
    task_id = create(sandbox, {"prompt": "[[sandbox:fail]] a fox"}).json()["data"]["task_id"]
    data = wait_for(sandbox, task_id, {"succeed", "failed"})
    assert (data["task_status"], data["task_status_msg"]) == ("failed", SIMULATED_FAILURE)
    assert fired_for(sandbox, task_id) == ["directives:applied"]


# --- time: stall, slow, release, finish, advance --------------------------------------------


def test_a_stalled_task_waits_until_released(sandbox: SandboxServer) -> None:
    task_id = started(sandbox, {"prompt": "please wait for me"})
    time.sleep(1.5)  # it would have finished long ago without the stall
    assert get(sandbox, task_id)["task_status"] == "processing"
    sandbox.release(task_id)
    data = wait_for(sandbox, task_id, {"succeed", "failed"})
    assert data["task_status"] == "succeed"
    assert data["task_result"]["videos"][0]["url"].startswith(sandbox.base_url)
    assert fired_for(sandbox, task_id) == ["stalled:applied"]


def test_a_slow_task_takes_at_least_its_time(sandbox: SandboxServer) -> None:
    task_id = create(sandbox, {"prompt": "a fox"}, "slow").json()["data"]["task_id"]
    data = wait_for(sandbox, task_id, {"succeed", "failed"})
    assert data["task_status"] == "succeed"
    assert data["updated_at"] - data["created_at"] >= 2000


def test_finish_now_skips_an_hour_long_task(sandbox: SandboxServer) -> None:
    task_id = started(sandbox, {"prompt": "a fox"}, "glacial")
    sandbox.finish(task_id)
    assert wait_for(sandbox, task_id, {"succeed", "failed"})["task_status"] == "succeed"


def test_advancing_a_tasks_clock_past_its_time_finishes_it(sandbox: SandboxServer) -> None:
    task_id = started(sandbox, {"prompt": "a fox"}, "glacial")
    sandbox.advance(1800, task_id)  # half of its hour: progress jumps to about half
    deadline = time.monotonic() + WAIT_S
    while (data := get(sandbox, task_id))["task_status"] == "processing":
        if data["task_progress"] >= 40 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert data["task_status"] == "processing" and 40 <= data["task_progress"] < 99
    sandbox.advance(1800, task_id)
    assert wait_for(sandbox, task_id, {"succeed", "failed"})["task_status"] == "succeed"


def test_advancing_the_clock_moves_every_running_task(sandbox: SandboxServer) -> None:
    first = started(sandbox, {"prompt": "a fox"}, "glacial")
    second = started(sandbox, {"prompt": "a hare"}, "glacial")
    sandbox.advance(3600)
    for task_id in (first, second):
        assert wait_for(sandbox, task_id, {"succeed", "failed"})["task_status"] == "succeed"


def test_control_routes_refuse_unknown_or_finished_tasks_and_account_keys(
    sandbox: SandboxServer,
) -> None:
    with pytest.raises(SandboxError, match=r"404.*1203"):
        sandbox.release("123456789012345678")
    task_id = create(sandbox, {"prompt": "a fox"}).json()["data"]["task_id"]
    wait_for(sandbox, task_id, {"succeed", "failed"})
    with pytest.raises(SandboxError, match=r"400.*already ended"):
        sandbox.finish(task_id)
    with pytest.raises(SandboxError, match="1201"):
        sandbox.advance(-5, task_id)
    for headers in ({}, _headers(sandbox)):
        response = httpx.get(f"{sandbox.base_url}/_sandbox/fired", headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] in (1001, 1002)


# --- links ----------------------------------------------------------------------------------


def test_short_lived_links_expire(sandbox: SandboxServer) -> None:
    task_id = create(sandbox, {"prompt": "a fox"}, "short-links").json()["data"]["task_id"]
    data = wait_for(sandbox, task_id, {"succeed", "failed"})
    url = data["task_result"]["videos"][0]["url"]
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert expires <= time.time() + 2
    while time.time() <= expires + 1:
        time.sleep(0.2)
    response = httpx.get(url)
    assert (response.status_code, response.json()["code"]) == (403, 1103)
    fresh = get(sandbox, task_id)["task_result"]["videos"][0]["url"]
    assert httpx.get(fresh).status_code == 200  # a new query signs a new link
    normal = create(sandbox, {"prompt": "a fox"}).json()["data"]["task_id"]
    url = wait_for(sandbox, normal, {"succeed"})["task_result"]["videos"][0]["url"]
    assert int(parse_qs(urlsplit(url).query)["expires"][0]) > time.time() + 3600


# --- callbacks ------------------------------------------------------------------------------


async def _callbacks_of(sandbox: SandboxServer, scenario: str, count: int) -> list[str]:
    async with Receiver() as rx, httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{sandbox.base_url}/v1/videos/text2video",
            json={"prompt": "a fox", "callback_url": rx.url("/hook")},
            headers=_headers(sandbox, scenario),
        )
        task_id = response.json()["data"]["task_id"]
        async with asyncio.timeout(WAIT_S):
            received = await rx.wait_for_count(count, "/hook")
        await asyncio.sleep(0.5)  # nothing more arrives
        assert len(rx.to("/hook")) == count
        assert all(r.payload["task_id"] == task_id for r in received)
        sent = await asyncio.to_thread(sandbox.callbacks, task_id)
    assert [c["status"] for c in sent] == [r.payload["task_status"] for r in received]
    assert all(c["delivery"] == "delivered" and c["attempts"] == 1 for c in sent)
    assert [c["body"]["task_status"] for c in sent] == [c["status"] for c in sent]
    return [r.payload["task_status"] for r in received]


async def test_callbacks_in_order_by_default(sandbox: SandboxServer) -> None:
    statuses = await _callbacks_of(sandbox, "slow", 3)
    assert statuses == ["submitted", "processing", "succeed"]


async def test_each_callback_sent_twice(sandbox: SandboxServer) -> None:
    statuses = await _callbacks_of(sandbox, "twice", 6)
    assert statuses == ["submitted"] * 2 + ["processing"] * 2 + ["succeed"] * 2


async def test_callbacks_out_of_order_processing_after_the_end(sandbox: SandboxServer) -> None:
    statuses = await _callbacks_of(sandbox, "shuffled", 3)
    assert statuses == ["submitted", "succeed", "processing"]


async def test_short_lived_links_hold_in_callbacks_too(sandbox: SandboxServer) -> None:
    async with Receiver() as rx, httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{sandbox.base_url}/v1/videos/text2video",
            json={"prompt": "a fox", "callback_url": rx.url("/short")},
            headers=_headers(sandbox, "short-links"),
        )
        assert response.status_code == 200, response.text
        async with asyncio.timeout(WAIT_S):
            received = await rx.wait_for_count(3, "/short")
    final = received[-1].payload
    assert final["task_status"] == "succeed"
    url = final["task_result"]["videos"][0]["url"]
    # signed when sent, for one second (a normal link lives a day)
    assert int(parse_qs(urlsplit(url).query)["expires"][0]) <= time.time() + 1


# --- reset and the list of scenarios --------------------------------------------------------


def test_scenarios_route_lists_the_rules(sandbox: SandboxServer) -> None:
    response = httpx.get(
        f"{sandbox.base_url}/_sandbox/scenarios",
        headers={"Authorization": f"Bearer {sandbox.admin_key}"},
    )
    rules = {r["name"]: r for r in response.json()["data"]}
    assert rules["busy"]["refuse"] == 1303 and rules["moderated"]["fail"] == "content_policy"


def test_reset_forgets_tasks_firings_and_callbacks(sandbox: SandboxServer) -> None:
    task_id = create(sandbox, {"prompt": "[[sandbox:fail]] a fox"}).json()["data"]["task_id"]
    wait_for(sandbox, task_id, {"failed"})
    assert sandbox.fired()
    removed = sandbox.reset()
    assert removed["tasks"] >= 1 and removed["scenarios_fired"] >= 1
    assert sandbox.fired() == [] and sandbox.callbacks() == []
    response = httpx.get(
        f"{sandbox.base_url}/v1/videos/text2video/{task_id}", headers=_headers(sandbox)
    )
    assert (response.status_code, response.json()["code"]) == (404, 1203)
    # the credentials still work, and the counted refusals start again
    assert create(sandbox, {"prompt": "a fox"}).status_code == 200
    again = create(sandbox, {"prompt": "a fox", "external_task_id": "busy-after-reset"})
    assert again.status_code == 429
