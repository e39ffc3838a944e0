"""A task's scenario as the sandbox engine applies it.

Scenarios are chosen when the task is created (:mod:`reelgate.domain.scenarios`: rules from
the scenarios file and the prompt's ``[[sandbox:...]]`` directives) and stored in the task's
params; :func:`scenario_for` reads them back. A task without a stored scenario (created before
scenarios were stored, or a job built by hand) has its directives parsed here, the same way.
Directives are removed from the prompt before it seeds the scene or becomes the caption, so a
prompt with ``[[sandbox:slow=5]]`` renders the same clip as the prompt without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from reelgate.domain.scenarios import (
    CONTENT_POLICY_FAILURE,
    MAX_SLOW_SECONDS,
    SIMULATED_CRASH,
    SIMULATED_FAILURE,
    Effects,
    ScenarioError,
    parse_directives,
    stored_effects,
    strip_directives,
)
from reelgate.engines.base import EngineError, Job

__all__ = [
    "CONTENT_POLICY_FAILURE",
    "MAX_SLOW_SECONDS",
    "SIMULATED_CRASH",
    "SIMULATED_FAILURE",
    "Scenario",
    "parse_scenario",
    "scenario_for",
]


@dataclass(frozen=True)
class Scenario:
    prompt: str  # the prompt without directives, whitespace collapsed
    failure: str | None = None  # task_status_msg to fail with, after any slow-down
    slow_s: float = 0.0  # the task takes at least this long
    stall: bool = False  # the task waits until released (``/_sandbox``) or cancelled
    crash: bool = False  # the engine raises a plain RuntimeError


def parse_scenario(prompt: str) -> Scenario:
    """Split ``prompt`` into its text and its directives.

    An unknown or malformed directive fails the task with a message naming it, so a typo does
    not silently render a normal clip.
    """
    try:
        effects = parse_directives(prompt)
    except ScenarioError as exc:
        raise EngineError(str(exc)) from None
    return _scenario(strip_directives(prompt), effects)


def scenario_for(job: Job) -> Scenario:
    """The scenario stored with the task, or (none stored) the prompt's directives."""
    effects = stored_effects(job.params)
    if effects is None:
        return parse_scenario(job.request.prompt)
    return _scenario(strip_directives(job.request.prompt), effects)


def _scenario(prompt: str, effects: Effects | None) -> Scenario:
    if effects is None:
        return Scenario(prompt)
    return Scenario(prompt, effects.failure, effects.slow_s, effects.stall, effects.crash)
