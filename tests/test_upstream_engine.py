"""The upstream engine against a fake provider in-process (issue 10): forwarding, durable
submission, every failure path, and the polling traffic of 500 tasks tracked at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from reelgate.domain.requests import Text2VideoRequest
from reelgate.engines.base import EngineError, Job, RetryLater, SlotPool
from reelgate.engines.upstream import UpstreamEngine, idempotency_id
from reelgate.engines.upstream.client import Credentials
from reelgate.engines.upstream.config import parse_entries

from .upstream_provider import VIDEO, Answer, FakeProvider, UpstreamTask

TASK = "900000000000000001"


def engine_for(provider: FakeProvider, **entry: Any) -> UpstreamEngine:
    base = {
        "id": "gw",
        "engine": "upstream",
        "base_url": provider.base_url,
        "model_name": "kling-v1",
        "api_key": provider.api_key,
        "poll_min_s": 0.01,
        "poll_max_s": 0.05,
        "unreachable_s": 5,
    }
    return UpstreamEngine([{**base, **entry}], transport=httpx.ASGITransport(provider.app))


class Run:
    def __init__(self, engine: UpstreamEngine, workdir: Path, task_id: str = TASK) -> None:
        self.engine = engine
        self.workdir = workdir
        self.task_id = task_id
        self.saved: list[dict[str, Any]] = []
        self.progress: list[float] = []

    def report(self, percent: float) -> None:
        self.progress.append(percent)

    async def checkpoint(self, state: Mapping[str, Any]) -> None:
        self.saved.append(dict(state))

    def job(self, state: Mapping[str, Any] | None = None) -> Job:
        request = Text2VideoRequest.model_validate(
            {
                "model_name": "gw",
                "prompt": "a lighthouse",
                "callback_url": "https://client.example/hook",
                "external_task_id": "the-clients-own",
                "watermark_info": {"enabled": True},
            }
        )
        return Job(
            task_id=self.task_id,
            model=self.engine.models()[0],
            request=request,
            workdir=self.workdir,
            state=self.saved[-1] if state is None and self.saved else dict(state or {}),
            checkpoint=self.checkpoint,
        )

    async def generate(self, state: Mapping[str, Any] | None = None) -> Any:
        return await self.engine.generate(self.job(state), self.report, lambda: False)


async def test_forwards_the_validated_request_and_mirrors_the_result(tmp_path: Path) -> None:
    provider = FakeProvider(finish_s=0.05)
    engine = engine_for(provider)
    try:
        output = await Run(engine, tmp_path / "w").generate()
    finally:
        await engine.aclose()
    (task,) = provider.tasks.values()
    assert task.body["model_name"] == "kling-v1"
    assert task.body["external_task_id"] == idempotency_id(TASK)
    assert "callback_url" not in task.body
    assert task.body["prompt"] == "a lighthouse" and task.body["watermark_info"] == {
        "enabled": True
    }
    (video,) = output.videos
    assert video.path.read_bytes() == VIDEO and video.duration == 5.0
    assert video.watermarked_path is not None and video.watermarked_path.read_bytes() == VIDEO
    assert output.units == "2.5"
    assert provider.requests["video"] == 2


async def test_submission_is_recorded_before_and_after_the_post(tmp_path: Path) -> None:
    provider = FakeProvider()
    engine = engine_for(provider)
    run = Run(engine, tmp_path / "w")
    try:
        await run.generate()
    finally:
        await engine.aclose()
    (task,) = provider.tasks.values()
    assert run.saved == [
        {"phase": "submitting", "external_id": idempotency_id(TASK)},
        {
            "phase": "submitted",
            "external_id": idempotency_id(TASK),
            "upstream_task_id": task.task_id,
        },
    ]
    assert 5.0 in run.progress


async def test_a_crash_after_the_post_is_reconciled_not_resubmitted(tmp_path: Path) -> None:
    provider = FakeProvider()
    external = idempotency_id(TASK)
    provider.tasks["77"] = UpstreamTask("77", {"external_task_id": external}, 0.0)
    provider.by_external[external] = "77"
    engine = engine_for(provider)
    run = Run(engine, tmp_path / "w")
    try:
        output = await run.generate({"phase": "submitting", "external_id": external})
    finally:
        await engine.aclose()
    assert provider.requests["create"] == 0 and provider.submissions == 1
    assert run.saved[-1]["upstream_task_id"] == "77"
    assert output.videos[0].path.read_bytes() == VIDEO


async def test_a_crash_before_the_post_submits_once(tmp_path: Path) -> None:
    provider = FakeProvider()
    engine = engine_for(provider)
    run = Run(engine, tmp_path / "w")
    try:
        await run.generate({"phase": "submitting", "external_id": idempotency_id(TASK)})
    finally:
        await engine.aclose()
    assert provider.requests["create"] == 1 and provider.requests["query"] >= 2


async def test_a_submitted_task_is_tracked_again_without_a_post(tmp_path: Path) -> None:
    provider = FakeProvider()
    provider.tasks["55"] = UpstreamTask("55", {}, 0.0)
    engine = engine_for(provider)
    try:
        await Run(engine, tmp_path / "w").generate({"phase": "submitted", "upstream_task_id": "55"})
    finally:
        await engine.aclose()
    assert provider.requests["create"] == 0


@pytest.mark.parametrize(
    ("answer", "state", "delay"),
    [
        (Answer(429, 1303, "parallel task limit", {"Retry-After": "7"}), {}, 7.0),
        (Answer(200, 1302, "rate limit"), {"throttles": 2}, 8.0),
        (Answer(429, 0, "too many", {"Retry-After": "1.5"}), {}, 1.5),
    ],
)
async def test_a_busy_provider_sends_the_task_back_for_later(
    tmp_path: Path, answer: Answer, state: dict[str, Any], delay: float
) -> None:
    provider = FakeProvider()
    provider.submit_script = [answer]
    engine = engine_for(provider)
    run = Run(engine, tmp_path / "w")
    try:
        with pytest.raises(RetryLater) as caught:
            await run.generate(state)
    finally:
        await engine.aclose()
    assert caught.value.delay_s == delay
    assert provider.base_url in str(caught.value)
    assert run.saved[-1] == {"throttles": state.get("throttles", 0) + 1}  # not "submitting"
    assert provider.submissions == 0


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (Answer(401, 1002, "invalid token"), "refused our credentials: code 1002: invalid token"),
        (Answer(400, 1201, "prompt: too long"), "rejected the task: code 1201: prompt: too long"),
        (Answer(400, 1301, "content safety"), "rejected the task: code 1301"),
    ],
)
async def test_auth_and_parameter_errors_fail_naming_the_upstream(
    tmp_path: Path, answer: Answer, fragment: str
) -> None:
    provider = FakeProvider()
    provider.submit_script = [answer]
    engine = engine_for(provider)
    try:
        with pytest.raises(EngineError) as caught:
            await Run(engine, tmp_path / "w").generate()
    finally:
        await engine.aclose()
    assert not isinstance(caught.value, RetryLater)
    assert f"upstream {provider.base_url}" in str(caught.value) and fragment in str(caught.value)


async def test_a_wrong_key_fails_the_task_naming_the_upstream(tmp_path: Path) -> None:
    provider = FakeProvider()
    engine = engine_for(provider, api_key="wrong")
    try:
        with pytest.raises(EngineError, match="refused our credentials"):
            await Run(engine, tmp_path / "w").generate()
    finally:
        await engine.aclose()


async def test_an_unreachable_provider_is_retried(tmp_path: Path) -> None:
    provider = FakeProvider()
    provider.submit_script = [Answer(500, 5000, "internal"), Answer(503, 5001, "unavailable")]
    provider.query_script = [Answer(502, 5000, "bad gateway")]
    engine = engine_for(provider)
    try:
        output = await Run(engine, tmp_path / "w").generate()
    finally:
        await engine.aclose()
    assert provider.submissions == 1 and output.videos


async def test_an_unreachable_provider_fails_the_task_at_its_deadline(tmp_path: Path) -> None:
    provider = FakeProvider()
    provider.submit_script = [Answer(500, 5000, "internal")] * 50
    engine = engine_for(provider, unreachable_s=0.3)
    try:
        with pytest.raises(EngineError, match=r"gave up after 0.3 s unreachable"):
            await Run(engine, tmp_path / "w").generate()
    finally:
        await engine.aclose()
    assert provider.submissions == 0


async def test_a_provider_gone_while_tracking_fails_at_the_deadline(tmp_path: Path) -> None:
    provider = FakeProvider(finish_s=60)
    engine = engine_for(provider, unreachable_s=0.3)
    run = Run(engine, tmp_path / "w")
    try:
        provider.query_script = [Answer(500, 5000, "down")] * 1000
        with pytest.raises(EngineError, match=r"gave up after 0\.3 s unreachable"):
            await run.generate()
    finally:
        await engine.aclose()


async def test_an_upstream_failure_fails_the_task_with_its_message(tmp_path: Path) -> None:
    provider = FakeProvider(outcome="failed")
    engine = engine_for(provider)
    try:
        with pytest.raises(EngineError) as caught:
            await Run(engine, tmp_path / "w").generate()
    finally:
        await engine.aclose()
    assert str(caught.value) == f"upstream {provider.base_url}: the provider's own reason"


async def test_cancel_stops_tracking(tmp_path: Path) -> None:
    provider = FakeProvider(finish_s=60)
    engine = engine_for(provider)
    run = Run(engine, tmp_path / "w")
    stop = asyncio.Event()
    try:
        work = asyncio.ensure_future(engine.generate(run.job(), run.report, stop.is_set))
        for _ in range(500):
            if engine.tracker.tracked:
                break
            await asyncio.sleep(0.01)
        stop.set()
        with pytest.raises(EngineError, match="cancelled"):
            await asyncio.wait_for(work, 5)
        assert engine.tracker.tracked == 0
    finally:
        await engine.aclose()


async def test_500_tasks_tracked_at_once_with_bounded_polling(tmp_path: Path) -> None:
    """Each task finishes 6 s after submission; polls start at 0.1 s and back off by 1.6x to
    1 s (the defaults, 1 s to 15 s, scaled down 10-15x): at most 5 polls in the first 2.5 s,
    then one a second, so no task may cost more than about 10. Load only lowers the count."""
    provider = FakeProvider(finish_s=6.0)
    engine = engine_for(provider, poll_min_s=0.1, poll_max_s=1.0)
    engine._max_inflight = 16
    started = time.monotonic()
    runs = [Run(engine, tmp_path / f"w{i}", task_id=str(TASK_BASE + i)) for i in range(500)]
    try:
        outputs = await asyncio.gather(*(run.generate() for run in runs))
    finally:
        await engine.aclose()
    assert len(outputs) == 500 and provider.submissions == 500
    per_task = provider.requests["query"] / 500
    took = time.monotonic() - started
    print(
        f"500 tasks: {per_task:.2f} polls per task ({provider.requests['query']} in {took:.1f} s),"
        f" at most {provider.most_inflight} at once"
    )
    assert per_task <= 11
    assert provider.most_inflight <= 16


TASK_BASE = 910000000000000000
SK = "a-secret-key-of-32-bytes-or-more-0123"


def test_jwt_is_minted_from_the_pair_and_renewed_before_expiry() -> None:
    ((_, up),) = parse_entries(
        [{"id": "kling-v1", "base_url": "https://k.example", "access_key": "AK", "secret_key": SK}],
        {},
    )
    now = [1_000_000.0]
    creds = Credentials(up, clock=lambda: now[0])
    first = creds.header().removeprefix("Bearer ")
    claims = jwt.decode(first, SK, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"iss": "AK", "exp": 1_001_800, "nbf": 999_995}
    now[0] += 1000
    assert creds.header() == f"Bearer {first}"  # still good for 800 s
    now[0] += 600
    assert creds.header() != f"Bearer {first}"  # within 300 s of expiry: a fresh one


def test_secrets_from_the_environment_and_clear_config_errors() -> None:
    entry = {"id": "kling-v1", "base_url": "https://k.example", "secret_key_env": "SK_VAR"}
    ((spec, up),) = parse_entries([{**entry, "access_key": "AK"}], {"SK_VAR": "from-env"})
    assert up.secret_key == "from-env" and spec.engine == "upstream"
    assert "from-env" not in repr(up)
    with pytest.raises(ValueError, match="environment variable SK_VAR"):
        parse_entries([{**entry, "access_key": "AK"}], {})
    with pytest.raises(ValueError, match="give access_key and secret_key"):
        parse_entries([{"id": "kling-v1", "base_url": "https://k.example"}], {})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['secret'\]"):
        parse_entries([{"id": "kling-v1", "base_url": "https://k.example", "secret": "x"}], {})
    with pytest.raises(ValueError, match="'like' must name a Kling model"):
        parse_entries([{"id": "mine", "base_url": "https://k.example", "api_key": "k"}], {})


def test_one_slot_pool_per_upstream_account() -> None:
    def entry(model: str, key: str, concurrency: int) -> dict[str, Any]:
        return {
            "id": model,
            "like": "kling-v1",
            "base_url": "https://k.example",
            "api_key": key,
            "concurrency": concurrency,
        }

    engine = UpstreamEngine([entry("a", "k1", 5), entry("b", "k1", 3), entry("c", "k2", 7)])
    assert engine.slot_pools() == [SlotPool(("a", "b"), 3), SlotPool(("c",), 7)]


async def test_a_throttled_reconcile_keeps_looking_before_submitting(tmp_path: Path) -> None:
    provider = FakeProvider()
    provider.query_script = [Answer(429, 1302, "rate limit")]
    engine = engine_for(provider)
    run = Run(engine, tmp_path / "w")
    external = idempotency_id(TASK)
    try:
        with pytest.raises(RetryLater):
            await run.generate({"phase": "submitting", "external_id": external})
    finally:
        await engine.aclose()
    assert run.saved[-1] == {"phase": "submitting", "external_id": external, "throttles": 1}
    assert provider.requests["create"] == 0


async def test_a_duplicate_idempotency_id_is_the_task_already_made(tmp_path: Path) -> None:
    provider = FakeProvider()
    external = idempotency_id(TASK)
    provider.tasks["66"] = UpstreamTask("66", {"external_task_id": external}, 0.0)
    provider.by_external[external] = "66"
    engine = engine_for(provider)
    run = Run(engine, tmp_path / "w")
    try:
        await run.generate({})
    finally:
        await engine.aclose()
    assert provider.submissions == 1 and run.saved[-1]["upstream_task_id"] == "66"
