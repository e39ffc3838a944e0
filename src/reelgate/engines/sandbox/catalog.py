"""The models the sandbox serves: Kling's own, or the catalogue's entries built on them."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reelgate.domain.kling import entry_aliases, kling_like, kling_models
from reelgate.domain.models import ModelSpec

ENGINE_NAME = "sandbox"
_KEYS = {"id", "engine", "like", "aliases", "description", "delay_s", "fail_rate"}


@dataclass(frozen=True)
class Behaviour:
    """Per-model scenario settings from the catalogue entry."""

    delay_s: float = 0.0  # every task takes at least this long
    fail_rate: float = 0.0  # this fraction of task ids fail

    @classmethod
    def of(cls, spec: ModelSpec) -> Behaviour:
        return cls(
            float(spec.options.get("delay_s", 0.0)), float(spec.options.get("fail_rate", 0.0))
        )

    def fails(self, task_id: str) -> bool:
        """Deterministic per task id, so a retry of a task meets the same fate."""
        digest = hashlib.sha256(task_id.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.fail_rate


def sandbox_models(entries: Sequence[Mapping[str, Any]]) -> list[ModelSpec]:
    """Kling's seven models without entries; otherwise exactly the entries' models.

    An entry names a Kling model to copy with ``like`` (or by its own ``id`` when that is a
    Kling name) and may set ``aliases``, ``description``, ``delay_s`` and ``fail_rate``.
    Raises ``ValueError`` naming the entry and the key when an entry is wrong.
    """
    kling = {spec.id: spec for spec in kling_models()}
    if not entries:
        return list(kling.values())
    return [_from_entry(entry, kling) for entry in entries]


def _from_entry(entry: Mapping[str, Any], kling: Mapping[str, ModelSpec]) -> ModelSpec:
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        raise ValueError(f"sandbox model entry {dict(entry)!r}: 'id' must be a non-empty string")
    where = f"sandbox model {model_id!r}"
    unknown = sorted(set(entry) - _KEYS)
    if unknown:  # a misspelt key would otherwise be ignored silently
        raise ValueError(f"{where}: unknown key(s) {unknown} (known: {sorted(_KEYS)})")
    base = kling_like(where, entry.get("like", model_id), kling)
    aliases = entry_aliases(entry, where)
    description = entry.get("description", base.description)
    if not isinstance(description, str):
        raise ValueError(f"{where}: 'description' must be a string")
    delay_s = _number(entry, "delay_s", where, upper=86400.0)
    fail_rate = _number(entry, "fail_rate", where, upper=1.0)
    return replace(
        base,
        id=model_id,
        engine=ENGINE_NAME,
        aliases=aliases,
        description=description,
        options={**base.options, "like": base.id, "delay_s": delay_s, "fail_rate": fail_rate},
    )


def _number(entry: Mapping[str, Any], key: str, where: str, upper: float) -> float:
    value = entry.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{where}: {key!r} must be a number, got {value!r}")
    if not 0 <= value <= upper:
        raise ValueError(f"{where}: {key!r} must be within 0..{upper:g}, got {value!r}")
    return float(value)
