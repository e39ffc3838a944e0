"""Catalogue entries of the ``upstream`` engine: where to forward, with which credentials.

An entry serves one model id, with the capability map of the Kling model it names (``like``,
else ``model_name``, else its ``id``), so requests are validated before anything goes upstream::

    [[models]]
    id = "kling-v2-1"
    engine = "upstream"
    base_url = "https://api-singapore.klingai.com"   # or a gateway's ".../kling"
    access_key_env = "KLING_AK"                       # or access_key = "..." in the file
    secret_key_env = "KLING_SK"                       # or api_key / api_key_env
    concurrency = 5                                   # tasks in flight on this upstream account

Secrets named by ``*_env`` keys are read from the environment when the catalogue is loaded.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reelgate.domain.kling import entry_aliases, kling_like, kling_models
from reelgate.domain.models import ModelSpec

ENGINE_NAME = "upstream"
_SECRETS = ("access_key", "secret_key", "api_key")
_NUMBERS: dict[str, tuple[float, float, float]] = {  # key: (default, lowest, highest)
    "concurrency": (10, 1, 100_000),
    "request_timeout_s": (30.0, 0.1, 600.0),
    "poll_min_s": (1.0, 0.01, 600.0),
    "poll_max_s": (15.0, 0.01, 3600.0),
    "unreachable_s": (600.0, 0.0, 86400.0),
}
_KEYS = {
    "id",
    "engine",
    "like",
    "aliases",
    "description",
    "base_url",
    "model_name",
    *_SECRETS,
    *(f"{key}_env" for key in _SECRETS),
    *_NUMBERS,
    "callback",
}


@dataclass(frozen=True)
class Upstream:
    """One served model's upstream: its base URL, credentials and pacing."""

    model_id: str  # the id reelgate serves
    base_url: str  # without a trailing slash; paths such as /v1/videos/text2video follow
    model_name: str  # the name sent upstream
    access_key: str | None
    secret_key: str | None
    api_key: str | None
    concurrency: int
    request_timeout_s: float
    poll_min_s: float
    poll_max_s: float
    unreachable_s: float  # an upstream unreachable this long fails the task
    callback: bool = False  # hand the upstream reelgate's callback URL (Job.hook_url)

    @property
    def label(self) -> str:
        """How messages name the upstream: its base URL (never a credential)."""
        return self.base_url

    @property
    def account(self) -> str:
        """Who the upstream counts concurrency for: base URL and key identity."""
        who = self.access_key or hashlib.sha256((self.api_key or "").encode()).hexdigest()[:16]
        return f"{self.base_url}#{who}"

    def __repr__(self) -> str:  # never show the secrets
        return f"Upstream({self.model_id!r} -> {self.model_name!r} at {self.base_url!r})"


def parse_entries(
    entries: Sequence[Mapping[str, Any]], environ: Mapping[str, str]
) -> list[tuple[ModelSpec, Upstream]]:
    """The served model and its upstream, per entry; ``ValueError`` naming entry and key."""
    if not entries:
        raise ValueError("the upstream engine needs [[models]] entries with a base_url")
    kling = {spec.id: spec for spec in kling_models()}
    return [_parse(entry, kling, environ) for entry in entries]


def _parse(
    entry: Mapping[str, Any], kling: Mapping[str, ModelSpec], environ: Mapping[str, str]
) -> tuple[ModelSpec, Upstream]:
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        raise ValueError(f"upstream model entry {_redacted(entry)!r}: 'id' must be a string")
    where = f"upstream model {model_id!r}"
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} (known: {sorted(_KEYS)})")
    base_url = entry.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(f"{where}: 'base_url' must be an http(s) URL, got {base_url!r}")
    model_name = _string(entry, "model_name", where, model_id)
    like = _string(entry, "like", where, model_name if model_name in kling else model_id)
    base = kling_like(where, like, kling)
    aliases = entry_aliases(entry, where)
    secrets = {key: _secret(entry, key, where, environ) for key in _SECRETS}
    if secrets["api_key"] is None and not (secrets["access_key"] and secrets["secret_key"]):
        raise ValueError(
            f"{where}: give access_key and secret_key (or their *_env names), or api_key"
        )
    numbers = {key: _number(entry, key, where) for key in _NUMBERS}
    if numbers["poll_max_s"] < numbers["poll_min_s"]:
        raise ValueError(f"{where}: 'poll_max_s' must not be below 'poll_min_s'")
    upstream = Upstream(
        model_id=model_id,
        base_url=base_url.rstrip("/"),
        model_name=model_name,
        access_key=secrets["access_key"],
        secret_key=secrets["secret_key"],
        api_key=None if secrets["access_key"] and secrets["secret_key"] else secrets["api_key"],
        concurrency=int(numbers["concurrency"]),
        request_timeout_s=numbers["request_timeout_s"],
        poll_min_s=numbers["poll_min_s"],
        poll_max_s=numbers["poll_max_s"],
        unreachable_s=numbers["unreachable_s"],
        callback=_flag(entry, "callback", where),
    )
    spec = replace(
        base,
        id=model_id,
        engine=ENGINE_NAME,
        aliases=aliases,
        description=_string(entry, "description", where, base.description),
        options={**base.options, "like": base.id},
    )
    return spec, upstream


def _string(entry: Mapping[str, Any], key: str, where: str, default: str) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {key!r} must be a non-empty string")
    return value


def _flag(entry: Mapping[str, Any], key: str, where: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{where}: {key!r} must be true or false, got {value!r}")
    return value


def _secret(
    entry: Mapping[str, Any], key: str, where: str, environ: Mapping[str, str]
) -> str | None:
    env_name = entry.get(f"{key}_env")
    if env_name is not None:
        if not isinstance(env_name, str) or not env_name:
            raise ValueError(f"{where}: '{key}_env' must name an environment variable")
        value = environ.get(env_name)
        if not value:
            raise ValueError(f"{where}: environment variable {env_name} ({key}) is not set")
        return value
    value = entry.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{where}: {key!r} must be a non-empty string")
    return value


def _number(entry: Mapping[str, Any], key: str, where: str) -> float:
    default, low, high = _NUMBERS[key]
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{where}: {key!r} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{where}: {key!r} must be within {low:g}..{high:g}, got {value!r}")
    return float(value)


def _redacted(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: ("***" if k in _SECRETS else v) for k, v in entry.items()}
