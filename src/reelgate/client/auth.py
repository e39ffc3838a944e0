"""``Authorization: Bearer`` for both of Kling's schemes, as ``httpx.Auth`` flows.

- :class:`ApiKeyAuth`: a static API key (Kling's newer keys, CometAPI, reelgate's API keys).
- :class:`JWTAuth`: AccessKey/SecretKey; mints an HS256 JWT ``{"iss": ak, "exp": now+ttl,
  "nbf": now-5}`` and reuses it until ``renew_before`` seconds before it expires.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator

import httpx
import jwt


class ApiKeyAuth(httpx.Auth):
    def __init__(self, api_key: str) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self._header = f"Bearer {api_key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:  # never show the key
        return "ApiKeyAuth(api_key='***')"


class JWTAuth(httpx.Auth):
    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        ttl: float = 1800,
        not_before_leeway: float = 5,
        renew_before: float = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not access_key or not secret_key:
            raise ValueError("access_key and secret_key must both be given")
        if renew_before >= ttl:
            raise ValueError("renew_before must be shorter than ttl")
        self.access_key = access_key
        self._secret_key = secret_key
        self._ttl = ttl
        self._leeway = not_before_leeway
        self._renew_before = renew_before
        self._clock = clock
        self._lock = threading.Lock()  # one client may be shared by threads
        self._token = ""
        self._expires_at = 0

    def token(self) -> str:
        """The current token, minting a fresh one when it is missing or about to expire."""
        with self._lock:
            now = self._clock()
            if now >= self._expires_at - self._renew_before:
                expires_at = int(now + self._ttl)
                not_before = int(now - self._leeway)
                payload = {"iss": self.access_key, "exp": expires_at, "nbf": not_before}
                self._token = jwt.encode(
                    payload, self._secret_key, algorithm="HS256", headers={"typ": "JWT"}
                )
                self._expires_at = expires_at
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request

    def __repr__(self) -> str:
        return f"JWTAuth(access_key={self.access_key!r}, secret_key='***')"
