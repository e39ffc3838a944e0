"""Reading a response: the Kling envelope ``{code, message, request_id, data}`` or a typed error.

Servers that are not reelgate answer in other shapes too: a gateway's OpenAI-style
``{"error": {"message": ...}}``, a proxy's HTML page, a redirect for a wrong path. Those become the
error class that matches their HTTP status, with a message that says what came back.
"""

from __future__ import annotations

from typing import Any

import httpx

from .errors import ReelgateError, ServerError, error_for_code

SUCCESS_CODE = 0

# Error code to use when a non-2xx response carries no Kling code.
_CODE_FOR_STATUS = {400: 1200, 401: 1000, 403: 1103, 404: 1202, 429: 1302}


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _code(body: Any) -> int | None:
    if isinstance(body, dict):
        code = body.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return None


def envelope_code(response: httpx.Response) -> int | None:
    """The envelope's ``code``, or None when the body is not an envelope."""
    return _code(_body(response))


def request_id_of(response: httpx.Response, body: Any = None) -> str | None:
    header: str | None = response.headers.get("x-request-id")
    if header:
        return header
    if isinstance(body, dict) and isinstance(body.get("request_id"), str):
        return str(body["request_id"])
    return None


def read_data(response: httpx.Response) -> Any:
    """The envelope's ``data`` for a success; raises the typed error for anything else."""
    body = _body(response)
    code = _code(body)
    request_id = request_id_of(response, body)
    if code is not None:
        if code == SUCCESS_CODE and response.is_success:
            return body.get("data")
        message = body.get("message")
        raise error_for_code(
            code,
            response.status_code,
            message if isinstance(message, str) and message else f"error code {code}",
            request_id,
        )
    raise foreign_error(response, body, request_id)


def foreign_error(response: httpx.Response, body: Any, request_id: str | None) -> ReelgateError:
    """The error for a response that is not a Kling envelope."""
    status = response.status_code
    where = f"{response.request.method} {response.request.url}"
    detail = _foreign_message(body) or _snippet(response)
    if response.is_success:
        return ServerError(
            f"{where} answered HTTP {status} without a Kling envelope ({detail});"
            " is base_url a Kling-compatible endpoint?",
            http_status=status,
            request_id=request_id,
        )
    if 300 <= status < 400:
        target = response.headers.get("location", "?")
        detail = f"redirected to {target}; check base_url"
    elif status == 404:
        detail = f"{detail}; check base_url" if detail else "no such endpoint; check base_url"
    code = _CODE_FOR_STATUS.get(status, 5000 if status >= 500 else 1200)
    return error_for_code(code, status, f"HTTP {status} from {where}: {detail}", request_id)


def _foreign_message(body: Any) -> str | None:
    """The message of an OpenAI-style ``{"error": {"message": ...}}`` or ``{"message": ...}``."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    for key in ("message", "detail", "error"):
        if isinstance(body.get(key), str):
            return str(body[key])
    return None


def _snippet(response: httpx.Response, limit: int = 120) -> str:
    text = " ".join(response.text.split())
    if not text:
        return response.reason_phrase or "empty body"
    return text if len(text) <= limit else text[:limit] + "..."
