"""Request ids and the error mapping: one place decides status and code for every failure.

An unexpected exception is answered here, inside the middleware stack, and not by an
``Exception`` handler: Starlette runs that handler in its outermost ``ServerErrorMiddleware``,
which re-raises after answering, so uvicorn logged the error twice and closed the keep-alive
connection. :class:`RequestIdMiddleware` answers with the 500 envelope, logs once, and returns.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelgate.domain.errors import (
    InvalidParameterError,
    InvalidRequestError,
    MethodNotFoundError,
    ReelgateError,
    ServerError,
)
from reelgate.domain.ids import new_request_id
from reelgate.domain.requests import describe_errors
from reelgate.logs import request_id_var

from .envelope import error

log = logging.getLogger("reelgate.api")


class RequestIdMiddleware:
    """Give each request a fresh UUID, readable as ``request.state.request_id``, and echo it.

    It is also the last line of the error contract: an exception nothing else handled becomes the
    500 envelope, and an error answer that is not JSON (Starlette's plain-text 400 and 416 for a
    malformed ``Range`` header) is rewritten as the envelope with the same status.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name == b"x-request-id" for name, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        started = False
        plain_error: Message | None = None  # the held start of a non-JSON error answer
        held: list[bytes] = []

        async def send_checked(message: Message) -> None:
            nonlocal started, plain_error
            if message["type"] == "http.response.start":
                started = True
                if message["status"] >= 400 and not _is_json(message):
                    plain_error = message
                    return
            elif message["type"] == "http.response.body" and plain_error is not None:
                held.append(message.get("body", b""))
                if not message.get("more_body", False):
                    response = _as_envelope(plain_error, b"".join(held), request_id)
                    await response(scope, receive, send_with_id)
                return
            await send_with_id(message)

        bound = request_id_var.set(request_id)  # every log line of this request carries it
        try:
            await self.app(scope, receive, send_checked)
        except Exception as exc:
            log.error(
                "unhandled error in %s %s (request %s)",
                scope.get("method"),
                scope.get("path"),
                request_id,
                exc_info=exc,
            )
            if started:  # half an answer is out: only closing the connection can tell the client
                raise
            response = error(ServerError(f"internal error (request {request_id})"), request_id)
            await response(scope, receive, send_with_id)
        finally:
            request_id_var.reset(bound)


_KEPT_HEADERS = {b"allow", b"content-range", b"retry-after", b"www-authenticate"}


def _is_json(start: Message) -> bool:
    for name, value in start.get("headers", []):
        if name.lower() == b"content-type":
            return bool(value.lower().startswith(b"application/json"))
    return False


def _as_envelope(start: Message, body: bytes, request_id: str) -> JSONResponse:
    """The envelope for an error answer some framework code wrote as plain text."""
    status = int(start["status"])
    text = body.decode("utf-8", "replace").strip()[:200] or HTTPStatus(status).phrase
    err = (
        InvalidRequestError(text, http_status=status)
        if status < 500
        else ServerError(text, http_status=status)
    )
    response = error(err, request_id)
    for name, value in start.get("headers", []):
        if name.lower() in _KEPT_HEADERS:
            response.headers.append(name.decode("latin-1"), value.decode("latin-1"))
    return response


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", None) or new_request_id()


def install_error_handlers(app: FastAPI) -> None:
    async def on_reelgate_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ReelgateError)
        return error(exc, request_id_of(request))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error(InvalidParameterError(describe_errors(exc.errors())), request_id_of(request))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code in (404, 405):
            err: ReelgateError = MethodNotFoundError(
                f"no such endpoint: {request.method} {request.url.path}"
            )
        elif exc.status_code < 500:  # e.g. a malformed Range header (400, 416)
            err = InvalidRequestError(str(exc.detail), http_status=exc.status_code)
        else:
            err = ServerError(str(exc.detail), http_status=exc.status_code)
        return error(err, request_id_of(request))

    app.add_exception_handler(ReelgateError, on_reelgate_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
