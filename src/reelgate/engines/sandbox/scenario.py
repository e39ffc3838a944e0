"""Scenario directives: ``[[sandbox:...]]`` markers in a prompt that steer the task's fate.

The syntax and the list are documented in the package docstring (:mod:`reelgate.engines.sandbox`).
Directives are removed from the prompt before it seeds the scene or becomes the caption, so a
prompt with ``[[sandbox:slow=5]]`` renders the same clip as the prompt without it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from reelgate.engines.base import EngineError

SIMULATED_FAILURE = "sandbox: simulated failure"
CONTENT_POLICY_FAILURE = "Failure to pass the risk control system"
SIMULATED_CRASH = "sandbox: simulated crash"
MAX_SLOW_SECONDS = 3600.0

_DIRECTIVE = re.compile(r"\[\[\s*sandbox\s*:\s*([^\]=]*?)\s*(?:=\s*([^\]]*?)\s*)?\]\]", re.I)
_FAIL_REASONS = {"content_policy": CONTENT_POLICY_FAILURE}


@dataclass(frozen=True)
class Scenario:
    prompt: str  # the prompt without directives, whitespace collapsed
    failure: str | None = None  # task_status_msg to fail with, after any slow-down
    slow_s: float = 0.0  # the task takes at least this long
    stall: bool = False  # the task never ends until cancelled
    crash: bool = False  # the engine raises a plain RuntimeError


def parse_scenario(prompt: str) -> Scenario:
    """Split ``prompt`` into its text and its directives.

    An unknown or malformed directive fails the task with a message naming it, so a typo does
    not silently render a normal clip.
    """
    failure: str | None = None
    slow_s = 0.0
    stall = crash = False
    for match in _DIRECTIVE.finditer(prompt):
        name, value = match.group(1).lower(), match.group(2)
        if name == "fail":
            failure = _failure(value)
        elif name == "slow":
            slow_s = _seconds(value)
        elif name == "stall" and value is None:
            stall = True
        elif name == "crash" and value is None:
            crash = True
        else:
            raise EngineError(
                f"sandbox: unknown directive {match.group(0)}"
                " (known: [[sandbox:fail]], [[sandbox:fail=content_policy]],"
                " [[sandbox:slow=SECONDS]], [[sandbox:stall]], [[sandbox:crash]])"
            )
    text = " ".join(_DIRECTIVE.sub(" ", prompt).split())
    return Scenario(text, failure, slow_s, stall, crash)


def _failure(value: str | None) -> str:
    if value is None or value == "":
        return SIMULATED_FAILURE
    reason = _FAIL_REASONS.get(value.lower())
    if reason is None:
        known = ", ".join(sorted(_FAIL_REASONS))
        raise EngineError(f"sandbox: unknown failure reason {value!r} (known: {known})")
    return reason


def _seconds(value: str | None) -> float:
    try:
        seconds = float(value or "")
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_SLOW_SECONDS:  # also rejects nan
        raise EngineError(
            f"sandbox: [[sandbox:slow=SECONDS]] needs a number of seconds in"
            f" 0..{MAX_SLOW_SECONDS:g}, got {value!r}"
        )
    return seconds
