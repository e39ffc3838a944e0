"""Small test helpers: JWT minting as Kling clients do it, envelope checks, free ports."""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any

import httpx
import jwt


def mint_jwt(
    access_key: str,
    secret_key: str,
    *,
    exp_in: int = 1800,
    nbf_in: int = -5,
    algorithm: str = "HS256",
    **extra: Any,
) -> str:
    now = int(time.time())
    payload = {"iss": access_key, "exp": now + exp_in, "nbf": now + nbf_in, **extra}
    return jwt.encode(payload, secret_key, algorithm=algorithm)


def assert_error(response: httpx.Response, status: int, code: int, *fragments: str) -> str:
    """The response is the JSON error envelope with this status and code; return its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"code", "message", "request_id"}, body
    assert body["code"] == code, body
    uuid.UUID(body["request_id"])
    assert response.headers["x-request-id"] == body["request_id"]
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return str(body["message"])


def assert_ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0 and body["message"] == "SUCCEED", body
    uuid.UUID(body["request_id"])
    assert response.headers["x-request-id"] == body["request_id"]
    return body["data"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
