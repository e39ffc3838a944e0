"""Retries against a fake external server: 429 then 200, 500 then 200, never on 400/401/403/404."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from reelgate.client import (
    AuthenticationError,
    ConcurrencyLimitError,
    InvalidParameterError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    Retry,
    ServerError,
    TransportError,
    endpoints,
    flows,
)
from reelgate.client.retry import parse_retry_after

from .client_fakes import FakeKling, async_client, error, sync_client


def test_429_rate_limit_then_200_is_retried() -> None:
    fake = FakeKling()
    fake.interrupt(error(429, 1302, "rate limit exceeded"))
    with sync_client(fake) as client:
        task = client.text2video.create(prompt="a fox")
    assert task.status == "submitted"
    assert [r.method for r in fake.api_requests()] == ["POST", "POST"]
    assert len(fake.tasks) == 1


def test_429_concurrency_then_200_is_retried() -> None:
    fake = FakeKling()
    fake.interrupt(error(429, 1303, "over the limit", **{"Retry-After": "0"}))
    with sync_client(fake) as client:
        client.text2video.create(prompt="a fox")
    assert len(fake.api_requests()) == 2


@pytest.mark.parametrize("status,code", [(500, 5000), (502, 5000), (503, 5001), (504, 5002)])
def test_5xx_then_200_is_retried(status: int, code: int) -> None:
    fake = FakeKling()
    task_id = _create_one(fake)
    fake.interrupt(error(status, code, "try later"))
    with sync_client(fake) as client:
        assert client.text2video.get(task_id).id == task_id
    assert len(fake.api_requests()) == 2


def test_connection_error_then_200_is_retried() -> None:
    fake = FakeKling()
    task_id = _create_one(fake)
    fake.interrupt(httpx.ConnectError("connection refused"), httpx.ReadTimeout("slow"))
    with sync_client(fake) as client:
        assert client.text2video.get(task_id).id == task_id
    assert len(fake.api_requests()) == 3


@pytest.mark.parametrize(
    "response,expected",
    [
        (error(400, 1201, "duration: must be 5 or 10"), InvalidParameterError),
        (error(401, 1004, "token expired"), AuthenticationError),
        (error(403, 1103, "no permission for kling-v3"), PermissionDeniedError),
        (error(404, 1203, "task not found"), NotFoundError),
        (error(429, 1102, "resource pack depleted"), QuotaExceededError),
    ],
)
def test_client_errors_are_not_retried(response: httpx.Response, expected: type[Exception]) -> None:
    fake = FakeKling()
    fake.interrupt(response)
    with sync_client(fake) as client, pytest.raises(expected) as caught:
        client.text2video.get("123")
    assert len(fake.api_requests()) == 1
    assert caught.value.http_status == response.status_code  # type: ignore[attr-defined]


def test_retries_give_up_with_the_last_typed_error() -> None:
    fake = FakeKling()
    fake.interrupt(*[error(429, 1303, "parallel task over resource pack limit")] * 3)
    with (
        sync_client(fake, retry=Retry(max_retries=2, backoff=0.001)) as client,
        pytest.raises(ConcurrencyLimitError) as caught,
    ):
        client.text2video.create(prompt="a fox")
    assert caught.value.code == 1303
    assert isinstance(caught.value, RateLimitError)
    assert len(fake.api_requests()) == 3
    assert fake.tasks == {}


def test_transport_failure_after_retries_is_a_transport_error() -> None:
    fake = FakeKling()
    fake.interrupt(*[httpx.ConnectError("connection refused")] * 4)
    with sync_client(fake) as client, pytest.raises(TransportError) as caught:
        client.text2video.get("123")
    assert "connection refused" in caught.value.message
    assert caught.value.http_status == 0
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_create_after_an_ambiguous_failure_returns_the_stored_task() -> None:
    """The first POST was stored but its answer lost; the retry is refused as a duplicate
    external_task_id, and the SDK returns the task the first attempt created."""
    fake = FakeKling()
    fake.lost_answers = 1
    with sync_client(fake) as client:
        task = client.text2video.create(prompt="a fox", external_task_id="order-7")
    assert [r.method for r in fake.api_requests()] == ["POST", "POST", "GET"]
    assert len(fake.tasks) == 1
    assert task.id == next(iter(fake.tasks))
    assert task.external_task_id == "order-7"


def test_a_refusal_without_ambiguity_is_raised_as_is() -> None:
    fake = FakeKling()
    with sync_client(fake) as client:
        client.text2video.create(prompt="a fox", external_task_id="order-7")
        with pytest.raises(InvalidParameterError, match="already exists"):
            client.text2video.create(prompt="a fox", external_task_id="order-7")


async def test_async_client_retries_the_same_way() -> None:
    fake = FakeKling()
    fake.interrupt(error(429, 1302, "rate limit"), error(500, 5000, "boom"))
    async with async_client(fake) as client:
        task = await client.text2video.create(prompt="a fox")
    assert task.status == "submitted"
    assert len(fake.api_requests()) == 3


async def test_async_client_does_not_retry_400() -> None:
    fake = FakeKling()
    fake.interrupt(error(400, 1200, "malformed JSON"))
    async with async_client(fake) as client:
        with pytest.raises(InvalidRequestError):
            await client.text2video.get("1")
    assert len(fake.api_requests()) == 1


# --- the policy itself, without I/O -------------------------------------------------------


def _response(status: int, code: int | None = None, **headers: str) -> httpx.Response:
    body = {"code": code, "message": "x"} if code is not None else None
    request = httpx.Request("GET", "https://kling.example/v1/videos/text2video/1")
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_retry_after_is_honoured_exactly() -> None:
    flow = flows.request(endpoints.get("1"), Retry())
    assert isinstance(next(flow), flows.Send)
    step = flow.send(_response(429, 1303, **{"Retry-After": "7"}))
    assert step == flows.Sleep(7.0)


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    policy = Retry(max_retries=10, backoff=1.0, max_backoff=8.0)
    outcome = _response(503, 5001)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
        delays = {policy.delay(attempt, outcome) for _ in range(50)}
        assert all(d is not None and ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
    assert policy.delay(10, outcome) is None


def test_retry_after_beyond_the_limit_is_not_waited_for() -> None:
    too_long = _response(429, 1302, **{"Retry-After": "3600"})
    assert Retry(max_retry_after=60).delay(0, too_long) is None


def test_429_without_a_kling_code_is_retried_but_quota_is_not() -> None:
    assert Retry().delay(0, _response(429)) is not None
    assert Retry().delay(0, _response(429, 1101)) is None
    assert Retry().delay(0, _response(429, 1304)) is None
    assert Retry().delay(0, _response(501, 5000)) is None


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(0, usegmt=True), now=10) == 0.0


def test_server_error_after_retries_is_a_server_error() -> None:
    fake = FakeKling()
    fake.interrupt(*[error(500, 5000, "boom")] * 4)
    with sync_client(fake) as client, pytest.raises(ServerError, match="boom"):
        client.text2video.list()
    assert len(fake.api_requests()) == 4


def _create_one(fake: FakeKling) -> str:
    with sync_client(fake) as client:
        task_id = client.text2video.create(prompt="a fox").id
    fake.requests.clear()
    return task_id
