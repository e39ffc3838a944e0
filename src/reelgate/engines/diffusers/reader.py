"""Typed, strict reading of one TOML table of a catalogue entry.

Each accessor records the key it read so :meth:`KeyReader.reject_unknown` can name a misspelt
one; every error names the model id and the key's dotted path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class EntryError(ValueError):
    """A catalogue entry for the diffusers engine is invalid; the message names model and key."""


class KeyReader:
    def __init__(self, raw: Mapping[str, Any], model_id: str, prefix: str = "") -> None:
        if not isinstance(raw, Mapping):
            raise EntryError(f"model {model_id}: {prefix.rstrip('.') or 'entry'}: must be a table")
        self.raw = raw
        self.model_id = model_id
        self.prefix = prefix
        self._seen: set[str] = set()

    def error(self, key: str, message: str) -> EntryError:
        return EntryError(f"model {self.model_id}: {self.prefix}{key}: {message}")

    def child(self, key: str) -> KeyReader | None:
        """A reader for the sub-table ``key``, or None when absent."""
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, "must be a table")
        return KeyReader(value, self.model_id, f"{self.prefix}{key}.")

    def has(self, key: str) -> bool:
        return key in self.raw

    def _get(self, key: str) -> Any:
        self._seen.add(key)
        return self.raw.get(key)

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self._get(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.error(key, "must be a non-empty string" if required else "must be a string")
        return value

    def choice(self, key: str, allowed: Sequence[str]) -> str | None:
        value = self._get(key)
        if value is None:
            return None
        if value not in allowed:
            raise self.error(key, f"{value!r} is not one of {', '.join(map(str, allowed))}")
        return str(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def off_or_choice(self, key: str, allowed: Sequence[str]) -> str | None:
        """``false`` or absent: None; ``true``: the first of ``allowed``; else one of them.

        A table value is left to the caller (returns None).
        """
        value = self._get(key)
        if value is None or value is False or isinstance(value, Mapping):
            return None
        if value is True and allowed:
            return allowed[0]
        if value not in allowed:
            choices = ", ".join(["false", *map(str, allowed)])
            raise self.error(key, f"{value!r} is not one of {choices}")
        return str(value)

    def integer(self, key: str, low: int, high: int) -> int | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(key, f"must be a whole number in {low}..{high}")
        return value

    def number(self, key: str, low: float, high: float) -> float | None:
        value = self._get(key)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise self.error(key, f"must be a number in {low:g}..{high:g}")
        return float(value)

    def float_pair(self, key: str) -> tuple[float, float] | None:
        value = self._get(key)
        if value is None:
            return None
        ok = isinstance(value, list) and len(value) == 2
        if not ok or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
            raise self.error(key, "must be a pair of numbers [low, high]")
        return (float(value[0]), float(value[1]))

    def int_list(self, key: str, low: int, high: int) -> list[int] | None:
        value = self._get(key)
        if value is None:
            return None
        ok = isinstance(value, list) and value and len(set(value)) == len(value)
        if not ok or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise self.error(key, "must be a non-empty list of distinct whole numbers")
        if any(not low <= v <= high for v in value):
            raise self.error(key, f"values must lie in {low}..{high}")
        return sorted(value)

    def str_list(self, key: str, allowed: Sequence[str]) -> list[str] | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not value or len(set(value)) != len(value):
            raise self.error(key, "must be a non-empty list of distinct strings")
        for item in value:
            if item not in allowed:
                raise self.error(key, f"{item!r} is not one of {', '.join(allowed)}")
        return [str(v) for v in value]

    def table(self, key: str) -> Mapping[str, Any]:
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(key, "must be a table")
        return value

    def scalar_table(self, key: str) -> dict[str, Any]:
        """A table of keyword arguments whose values are strings, numbers or booleans."""
        table = self.table(key)
        for name, value in table.items():
            if not isinstance(value, str | int | float | bool):
                raise self.error(f"{key}.{name}", "must be a string, number or boolean")
        return dict(table)

    def reject_unknown(self, also_allowed: set[str] | frozenset[str] = frozenset()) -> None:
        unknown = sorted(set(self.raw) - self._seen - set(also_allowed))
        if unknown:
            raise self.error(unknown[0], "unknown key")
