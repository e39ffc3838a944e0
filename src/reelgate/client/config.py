"""Where a client's base URL and credentials come from when the caller does not pass them.

Each of the three is taken from the first source that has it: the arguments, then the
``REELGATE_BASE_URL`` / ``REELGATE_ACCESS_KEY`` + ``REELGATE_SECRET_KEY`` / ``REELGATE_API_KEY``
variables (declared in :class:`reelgate.settings.ClientSettings`), then ``credentials.json``
in the data directory of a local ``reelgate serve`` (the ``data_dir`` argument, else
``$REELGATE_DATA_DIR``, default ``./reelgate-data``).
Credentials are taken as a set from one source (a key from the environment never pairs with a
secret from the file), and an API key wins over an AK/SK pair of the same source. The file's
credentials are only sent to the server the file describes, never to another base URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from reelgate.settings import ClientSettings, default_of

from .auth import ApiKeyAuth, JWTAuth

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_DATA_DIR = str(default_of("data_dir"))
CREDENTIALS_FILE = "credentials.json"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Credentials:
    api_key: str | None = None
    access_key: str | None = None
    secret_key: str | None = None

    @property
    def present(self) -> bool:
        return bool(self.api_key or self.access_key or self.secret_key)

    def auth(self) -> httpx.Auth | None:
        """The auth flow for these credentials; None when there are none."""
        if self.api_key:
            return ApiKeyAuth(self.api_key)
        if self.access_key or self.secret_key:
            if not (self.access_key and self.secret_key):
                raise ValueError("access_key and secret_key must be given together")
            return JWTAuth(self.access_key, self.secret_key)
        return None


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    auth: httpx.Auth | None
    credentials: Credentials = Credentials()
    #: the ``credentials.json`` that was consulted, and what it offered this base URL
    credentials_file: Path | None = None
    file_note: str = ""

    def missing_credentials_message(self) -> str:
        """Why there are no credentials: each source tried, and how to pass them."""
        looked = ""
        if self.credentials_file is not None:
            looked = f"; {self.credentials_file.resolve()} ({self.file_note})"
        return (
            f"no credentials for {self.base_url}. Looked at: the --api-key / --access-key and"
            " --secret-key options (none given); the environment variables REELGATE_API_KEY,"
            f" REELGATE_ACCESS_KEY and REELGATE_SECRET_KEY (not set){looked}. Pass --api-key KEY"
            " (or --access-key AK --secret-key SK), set REELGATE_API_KEY (or REELGATE_ACCESS_KEY"
            " and REELGATE_SECRET_KEY), or point --data-dir (REELGATE_DATA_DIR) at the data"
            " directory of the `reelgate serve` that wrote credentials.json"
        )


def normalize_base_url(url: str) -> str:
    """``https://host``, or a gateway prefix such as ``https://host/kling``; no final ``/``."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an absolute http(s) URL, got {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not have a query or fragment, got {url!r}")
    return url


def credentials_path(declared: ClientSettings, data_dir: Path | str | None = None) -> Path:
    """``credentials.json`` in ``data_dir``, else in ``$REELGATE_DATA_DIR``, else the default."""
    return Path(data_dir or declared.data_dir) / CREDENTIALS_FILE


def read_credentials_file(path: Path) -> dict[str, Any]:
    """The file ``reelgate serve`` writes on first start; ``{}`` when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        content = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return {k: v for k, v in content.items() if isinstance(v, str) and v}


def _same_server(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    host_a, host_b = pa.hostname or "", pb.hostname or ""
    same_host = host_a == host_b or (host_a in _LOOPBACK and host_b in _LOOPBACK)
    return same_host and pa.port == pb.port and pa.scheme == pb.scheme


def resolve_config(
    base_url: str | None = None,
    *,
    api_key: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    data_dir: Path | str | None = None,
    env: Mapping[str, str] | None = None,
) -> ClientConfig:
    declared = ClientSettings.from_env(env)
    given = Credentials(api_key, access_key, secret_key)
    from_env = Credentials(declared.api_key, declared.access_key, declared.secret_key)
    chosen_url = base_url or declared.base_url
    file: dict[str, Any] = {}
    path: Path | None = None
    if chosen_url is None or not (given.present or from_env.present):
        path = credentials_path(declared, data_dir)
        file = read_credentials_file(path)
    file_url = normalize_base_url(file.get("base_url") or DEFAULT_BASE_URL)
    url = normalize_base_url(chosen_url) if chosen_url else file_url

    credentials = given if given.present else from_env
    note = ""
    if not credentials.present and path is not None:
        from_file = Credentials(file.get("api_key"), file.get("access_key"), file.get("secret_key"))
        if not file:
            note = "not found" if not path.exists() else "holds no keys"
        elif not _same_server(url, file_url):
            note = f"its keys are for {file_url}, never sent to another server"
        elif not from_file.present:
            note = "holds no keys"
        else:
            credentials = from_file
    return ClientConfig(
        base_url=url,
        auth=credentials.auth(),
        credentials=credentials,
        credentials_file=path,
        file_note=note,
    )
