"""Responses become data or typed errors: Kling envelopes and what other servers send."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reelgate.client import (
    AuthenticationError,
    ConcurrencyLimitError,
    ContentPolicyError,
    InvalidParameterError,
    NotFoundError,
    RateLimitError,
    ReelgateError,
    ServerError,
)
from reelgate.client.envelope import read_data
from reelgate.domain.errors import MethodNotFoundError, ServiceUnavailableError

URL = "https://kling.example/v1/videos/text2video/1"


def _response(status: int, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", URL), **kwargs)


def test_success_returns_data() -> None:
    body = {"code": 0, "message": "SUCCEED", "request_id": "r", "data": {"task_id": "1"}}
    assert read_data(_response(200, json=body)) == {"task_id": "1"}


@pytest.mark.parametrize(
    "status,code,cls",
    [
        (401, 1004, AuthenticationError),
        (400, 1201, InvalidParameterError),
        (400, 1301, ContentPolicyError),
        (404, 1203, NotFoundError),
        (429, 1303, ConcurrencyLimitError),
        (503, 5001, ServiceUnavailableError),
    ],
)
def test_envelope_errors_are_typed(status: int, code: int, cls: type[ReelgateError]) -> None:
    body = {"code": code, "message": "the field and the rule", "request_id": "body-id"}
    with pytest.raises(cls) as caught:
        read_data(_response(status, json=body, headers={"X-Request-Id": "header-id"}))
    err = caught.value
    assert (err.code, err.http_status, err.message) == (code, status, "the field and the rule")
    assert err.request_id == "header-id"
    assert str(err) == f"[{code}] the field and the rule"


def test_request_id_falls_back_to_the_body() -> None:
    body = {"code": 1203, "message": "gone", "request_id": "body-id"}
    with pytest.raises(NotFoundError) as caught:
        read_data(_response(404, json=body))
    assert caught.value.request_id == "body-id"


def test_gateway_openai_style_error_keeps_its_message() -> None:
    body = {"error": {"message": "invalid api key", "type": "comet_api_error", "code": None}}
    with pytest.raises(AuthenticationError, match="invalid api key") as caught:
        read_data(_response(401, json=body))
    assert caught.value.code == 1000 and caught.value.http_status == 401


def test_html_error_page_is_a_server_error() -> None:
    with pytest.raises(ServerError, match=r"HTTP 502.*Bad Gateway") as caught:
        read_data(_response(502, text="<html><h1>502 Bad Gateway</h1></html>"))
    assert caught.value.http_status == 502


def test_gateway_429_without_kling_code_is_a_rate_limit() -> None:
    with pytest.raises(RateLimitError):
        read_data(_response(429, json={"error": {"message": "slow down"}}))


def test_wrong_path_points_at_the_base_url() -> None:
    with pytest.raises(MethodNotFoundError, match="check base_url"):
        read_data(_response(404, text="Not Found"))
    with pytest.raises(ReelgateError, match=r"redirected to https://elsewhere/.*base_url"):
        read_data(_response(301, headers={"Location": "https://elsewhere/"}))


def test_success_that_is_not_an_envelope_is_reported() -> None:
    with pytest.raises(ServerError, match="without a Kling envelope"):
        read_data(_response(200, text="<html>welcome</html>"))


def test_task_data_that_breaks_the_contract_is_a_server_error() -> None:
    from reelgate.client import Retry, endpoints, flows

    flow = flows.request(endpoints.get("1"), Retry())
    next(flow)
    body = {"code": 0, "message": "SUCCEED", "data": {"task_id": "1", "task_status": "weird"}}
    with pytest.raises(ServerError, match="unexpected data"):
        flow.send(_response(200, json=body))
