"""When to retry a request and how long to wait first. Pure: no I/O, no sleeping.

Retried: 429 with code 1302 (rate limit) or 1303 (concurrency; nothing was created), 429 without
a Kling code (a gateway's rate limit), 500/502/503/504, and transport failures (connection refused,
reset, timed out). Never retried: every other 4xx (400, 401, 403, 404, and 429 with codes 1100-1102
or 1304, which waiting does not fix).
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import httpx

from .envelope import envelope_code

RETRY_STATUSES = frozenset({500, 502, 503, 504})
RETRY_429_CODES = frozenset({1302, 1303})

# Transport failures worth another try; the rest (bad URL scheme, proxy setup) will fail again.
_RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# Failures before the request left this machine: the server cannot have acted on it.
_NOT_SENT_EXCEPTIONS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Outcome = httpx.Response | Exception


def is_retryable(outcome: Outcome) -> bool:
    if isinstance(outcome, Exception):
        return isinstance(outcome, _RETRY_EXCEPTIONS)
    if outcome.status_code in RETRY_STATUSES:
        return True
    if outcome.status_code == 429:
        code = envelope_code(outcome)
        return code is None or code in RETRY_429_CODES
    return False


def may_have_been_processed(outcome: Outcome) -> bool:
    """True when the server may have acted on the request although it did not answer success."""
    if isinstance(outcome, Exception):
        return not isinstance(outcome, _NOT_SENT_EXCEPTIONS)
    return outcome.status_code >= 500


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class Retry:
    """Retry policy: up to ``max_retries`` more attempts with exponential backoff and jitter.

    The n-th retry (from 0) waits a random time in ``[d/2, d]`` with
    ``d = min(max_backoff, backoff * 2**n)``, or exactly what the server's ``Retry-After`` says.
    A ``Retry-After`` longer than ``max_retry_after`` is not waited for: the error is raised.
    """

    max_retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, outcome: Outcome) -> float | None:
        """Seconds to wait before the next attempt, or None to stop and report ``outcome``."""
        if attempt >= self.max_retries or not is_retryable(outcome):
            return None
        if isinstance(outcome, httpx.Response):
            retry_after = parse_retry_after(outcome.headers.get("retry-after"))
            if retry_after is not None:
                return retry_after if retry_after <= self.max_retry_after else None
        ceiling = min(self.max_backoff, self.backoff * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


NO_RETRY = Retry(max_retries=0)
