"""Reading JSON from a hostile client: bounded size, depth and numbers, valid Unicode only.

Python's ``json`` module turns some inputs into exceptions that are not ``JSONDecodeError``
(``RecursionError`` for deep nesting, ``ValueError`` for integers past 4300 digits) and accepts
things that are not JSON at all (``NaN``, ``Infinity``, unpaired UTF-16 surrogates such as
``"\\ud800"``, which no database or UTF-8 encoder takes). :func:`parse_json` refuses each of them
with a message that names the rule, so every caller answers 400 instead of 500.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

from reelgate.domain.errors import InvalidRequestError

MAX_BODY_BYTES = 256 * 1024  # a maximal valid request is ~20 KB
MAX_DEPTH = 32  # a valid create body nests 3 levels (camera_control.config)
MAX_NUMBER_DIGITS = 100  # no field needs more; Python refuses ints past 4300 digits anyway


class JSONRuleError(ValueError):
    """A JSON text that breaks one of the rules above; the message names the rule."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise JSONRuleError(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS * 2:
        raise JSONRuleError(f"a number has more than {MAX_NUMBER_DIGITS * 2} characters")
    value = float(text)
    if not math.isfinite(value):
        raise JSONRuleError(f"the number {text[:20]} is out of range")
    return value


def _parse_constant(text: str) -> Any:
    raise JSONRuleError(f"{text} is not a JSON value")


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _check_tree(value: Any) -> None:
    """Depth and Unicode of a decoded value, walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise JSONRuleError(f"it nests deeper than {MAX_DEPTH} levels")
            for key, child in item.items():
                if _has_surrogate(key):
                    raise JSONRuleError("a key has an unpaired UTF-16 surrogate (\\ud800-\\udfff)")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise JSONRuleError(f"it nests deeper than {MAX_DEPTH} levels")
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and _has_surrogate(item):
            raise JSONRuleError("a string has an unpaired UTF-16 surrogate (\\ud800-\\udfff)")


def parse_json(raw: bytes | str) -> Any:
    """Decode ``raw``; a :class:`JSONRuleError` says why it is not acceptable JSON."""
    try:
        value = json.loads(
            raw,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except RecursionError:
        raise JSONRuleError(f"it nests deeper than {MAX_DEPTH} levels") from None
    except JSONRuleError:
        raise
    except UnicodeDecodeError as exc:
        raise JSONRuleError(f"it is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # JSONDecodeError, and the int-conversion limit
        raise JSONRuleError(str(exc)) from None
    _check_tree(value)
    return value


async def json_body(request: Request) -> Any:
    """The request body as JSON: at most MAX_BODY_BYTES, else 400/1200 saying why."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidRequestError(f"request body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise InvalidRequestError("request body is empty; expected a JSON object")
    try:
        return parse_json(raw)
    except JSONRuleError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
