"""Kling's task API spoken to an upstream: submit, query, download; errors sorted by remedy.

Exception tree (each message names the upstream by its base URL)::

    UpstreamError
    ├── Throttled      429, 1302 (rate), 1303 (concurrency): try again later, honouring Retry-After
    ├── Rejected       auth (1000-1004), account (1100-1103), parameters (1200-1201), policy:
    │                  the task cannot succeed there; it fails
    └── Unreachable    connection errors, timeouts, 5xx, an answer that is not Kling's envelope:
                       retried until the entry's ``unreachable_s``
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt

from .config import Upstream

TEXT2VIDEO = "/v1/videos/text2video"
JWT_TTL_S = 1800
JWT_RENEW_BEFORE_S = 300
_THROTTLE_CODES = {1302, 1303}
_NOT_FOUND_CODES = {1203}


class UpstreamError(Exception):
    pass


class Throttled(UpstreamError):
    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Rejected(UpstreamError):
    pass


class Unreachable(UpstreamError):
    pass


class Credentials:
    """The ``Authorization`` value for an upstream: its API key, or an HS256 JWT minted from
    its AccessKey/SecretKey (``exp`` now+1800, ``nbf`` now-5), renewed before it expires."""

    def __init__(self, upstream: Upstream, clock: Any = time.time) -> None:
        self._upstream = upstream
        self._clock = clock
        self._token = ""
        self._expires_at = 0.0

    def header(self) -> str:
        up = self._upstream
        if up.access_key is None or up.secret_key is None:
            return f"Bearer {up.api_key}"
        now = self._clock()
        if not self._token or now >= self._expires_at - JWT_RENEW_BEFORE_S:
            self._expires_at = now + JWT_TTL_S
            claims = {"iss": up.access_key, "exp": int(self._expires_at), "nbf": int(now) - 5}
            self._token = jwt.encode(claims, up.secret_key, algorithm="HS256")
        return f"Bearer {self._token}"


class UpstreamClient:
    """One shared ``httpx.AsyncClient`` for every upstream of the engine."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._credentials: dict[str, Credentials] = {}

    async def submit(self, up: Upstream, body: Mapping[str, Any]) -> str:
        """Create the task upstream; its upstream task id."""
        data = await self._call(up, "POST", TEXT2VIDEO, json=dict(body))
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not isinstance(task_id, str | int) or not str(task_id):
            raise Unreachable(f"upstream {up.label} answered the submission without a task_id")
        return str(task_id)

    async def query(self, up: Upstream, task_or_external_id: str) -> dict[str, Any] | None:
        """The upstream's task (Kling's ``data``), or None when it has no such task."""
        try:
            data = await self._call(up, "GET", f"{TEXT2VIDEO}/{task_or_external_id}")
        except _NotFound:
            return None
        if not isinstance(data, dict) or "task_status" not in data:
            raise Unreachable(f"upstream {up.label} answered a query without task_status")
        return data

    async def download(self, up: Upstream, url: str, path: Path) -> None:
        """Stream ``url`` (the upstream's result link, no credentials sent) into ``path``."""
        try:
            async with self.http.stream("GET", url, timeout=up.request_timeout_s) as response:
                if response.status_code != 200:
                    raise Unreachable(
                        f"upstream {up.label}: downloading a result answered"
                        f" HTTP {response.status_code}"
                    )
                with path.open("wb") as out:
                    async for chunk in response.aiter_bytes(1 << 16):
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise Unreachable(f"upstream {up.label}: downloading a result failed: {exc!r}") from exc

    async def _call(self, up: Upstream, method: str, path: str, **kwargs: Any) -> Any:
        creds = self._credentials.get(up.account)
        if creds is None:
            creds = self._credentials[up.account] = Credentials(up)
        try:
            response = await self.http.request(
                method,
                f"{up.base_url}{path}",
                headers={"Authorization": creds.header()},
                timeout=up.request_timeout_s,
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise Unreachable(f"upstream {up.label} unreachable: {exc!r}") from exc
        return _answer(up, response)


class _NotFound(UpstreamError):
    pass


def _answer(up: Upstream, response: httpx.Response) -> Any:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        if status == 429:
            raise Throttled(f"upstream {up.label}: HTTP 429", _retry_after(response))
        raise Unreachable(f"upstream {up.label} answered HTTP {status} without Kling's envelope")
    code: int = body["code"]
    message = str(body.get("message", ""))[:500]
    said = f"upstream {up.label} answered code {code} (HTTP {status}): {message}"
    if status == 200 and code == 0:
        return body.get("data")
    if status == 429 or code in _THROTTLE_CODES:
        raise Throttled(said, _retry_after(response))
    if code in _NOT_FOUND_CODES or status == 404:
        raise _NotFound(said)
    if status >= 500 or code >= 5000:
        raise Unreachable(said)
    if 1000 <= code < 1100 or status in (401, 403):
        raise Rejected(f"upstream {up.label} refused our credentials: code {code}: {message}")
    raise Rejected(f"upstream {up.label} rejected the task: code {code}: {message}")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date, or nothing: our own backoff applies
    return max(0.0, min(seconds, 3600.0))
