"""A handler error is answered with the 500 envelope, logged once, and keeps the connection.

Runs the app under a real uvicorn server on a free loopback port (in a thread), with one extra
route that raises, and sends two requests over ONE ``http.client`` connection.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from reelgate.api import create_app
from reelgate.settings import Settings

from .live import serving


class Boom(RuntimeError):
    pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[int]:
    app: FastAPI = create_app(Settings(data_dir=tmp_path / "data"))

    @app.get("/test-only/boom")
    async def boom() -> None:
        raise Boom("handler failed")

    with serving(app) as base_url:
        yield int(base_url.rsplit(":", 1)[1])


def test_handler_error_keeps_the_keep_alive_connection(
    server: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    try:
        conn.request("GET", "/test-only/boom")
        first = conn.getresponse()
        body = json.loads(first.read())
        assert first.status == 500
        assert body["code"] == 5000 and "internal error" in body["message"]
        assert first.getheader("x-request-id") == body["request_id"]
        assert "handler failed" not in json.dumps(body)  # no detail of ours leaks
        assert first.getheader("connection", "").lower() != "close"
        sock = conn.sock
        assert sock is not None

        # an error answered before the body was read (401 first) keeps the connection too
        conn.request("POST", "/v1/videos/text2video", body=b'{"prompt": "' + b"x" * 100_000 + b'"}')
        refused = conn.getresponse()
        assert refused.status == 401 and json.loads(refused.read())["code"] == 1001
        assert conn.sock is sock

        conn.request("GET", "/healthz")
        second = conn.getresponse()
        assert second.status == 200, second.read()
        assert json.loads(second.read())["code"] == 0
        # http.client reconnects silently when the server closed: the socket must be the same
        assert conn.sock is sock
    finally:
        conn.close()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert body["request_id"] in errors[0].getMessage()
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is Boom
