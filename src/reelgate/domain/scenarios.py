"""Sandbox scenarios: what a task does instead of rendering normally, and how one is chosen.

A scenario is chosen when a task is created (the API), then stored with the task in its params
under :data:`SCENARIO_PARAM`, so a worker in another process applies it. Two sources, one
mechanism:

- **rules** from the scenarios file (``REELGATE_SCENARIOS``, TOML), matched against the prompt
  (``prompt``: a case-insensitive substring, ``prompt_regex``: a regular expression), the
  ``external_task_id`` prefix (``external_task_id_prefix``), or named by the request header
  ``X-Reelgate-Scenario``; the first rule that matches wins, a header beats the matchers;
- **prompt directives** ``[[sandbox:fail]]``, ``[[sandbox:fail=content_policy]]``,
  ``[[sandbox:slow=SECONDS]]``, ``[[sandbox:stall]]``, ``[[sandbox:crash]]``, removed from the
  prompt before it seeds the scene or becomes the caption.

Example file::

    [[scenarios]]
    name = "busy"                      # X-Reelgate-Scenario: busy selects it too
    external_task_id_prefix = "busy-"
    refuse = 1303                      # create answers 429/1303 ...
    times = 2                          # ... for the first 2 matching creates, then accepts
    retry_after = 1                    # Retry-After: 1

    [[scenarios]]
    name = "moderated"
    prompt = "forbidden"
    fail = "content_policy"            # fails with Kling's risk-control message

Effects (a rule may combine them), each with an example rule::

    refuse = 1301            # create answers the code's error: 400/1301 (content policy),
    message = "..."          # 429/1302, 429/1303, 429/1102, 403/1103, 500/5000, 503/5001...
    retry_after = 2          # with Retry-After: 2
    times = 2                # only the first 2 matching creates since the last reset

    fail = "content_policy"  # the task fails: Kling's risk-control message; true: "sandbox:
                             # simulated failure"; any other text: that message
    slow = 30                # the task takes at least 30 s, progress advancing smoothly
    stall = true             # the task waits in processing until POST
                             # /_sandbox/tasks/{id}/release (or .../finish)
    crash = true             # the engine raises: how the worker handles a broken engine
    callbacks = "twice"      # every callback is delivered twice (same body)
    callbacks = "out_of_order"  # processing is delivered after the final status
    link_ttl = 5             # result links in queries expire after 5 s

A rule without matchers fires only when named by ``X-Reelgate-Scenario``. Rules apply to
models served by the sandbox engine only.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InvalidParameterError, ReelgateError, error_for_code
from .requests import describe_validation_error

SCENARIO_PARAM = "x_reelgate_scenario"  # the key in a task's params the sandbox engine reads
SCENARIO_HEADER = "X-Reelgate-Scenario"
DIRECTIVES = "directives"  # the name of the scenario made from prompt directives

SIMULATED_FAILURE = "sandbox: simulated failure"
CONTENT_POLICY_FAILURE = "Failure to pass the risk control system"
SIMULATED_CRASH = "sandbox: simulated crash"
MAX_SLOW_SECONDS = 3600.0
_FAIL_REASONS = {"content_policy": CONTENT_POLICY_FAILURE}

CallbackMode = Literal["twice", "out_of_order"]


class ScenarioError(ValueError):
    """A scenario file or a prompt directive is wrong; the message names it."""


class Effects(BaseModel):
    """What the worker does with a task: stored in its params, read by the sandbox engine."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(description="the scenario that chose these effects")
    failure: str | None = None  # task_status_msg to fail with, after any slow-down
    slow_s: float = 0.0  # the task takes at least this long
    stall: bool = False  # the task waits until released, finished or cancelled
    crash: bool = False  # the engine raises a plain RuntimeError
    callbacks: CallbackMode | None = None  # each callback sent twice, or processing last
    link_ttl_s: int | None = None  # result links of this task expire after this many seconds

    def merged(self, other: Effects) -> Effects:
        """Both sets at once (a rule plus directives): ``self`` wins where both choose."""
        return Effects(
            name=f"{self.name}+{other.name}",
            failure=self.failure or other.failure,
            slow_s=max(self.slow_s, other.slow_s),
            stall=self.stall or other.stall,
            crash=self.crash or other.crash,
            callbacks=self.callbacks or other.callbacks,
            link_ttl_s=self.link_ttl_s if self.link_ttl_s is not None else other.link_ttl_s,
        )

    @property
    def inert(self) -> bool:
        return self == Effects(name=self.name)


def stored_effects(params: Mapping[str, Any]) -> Effects | None:
    """The effects stored with a task, or None."""
    raw = params.get(SCENARIO_PARAM)
    return Effects.model_validate(raw) if isinstance(raw, dict) else None


def callback_mode(params: Mapping[str, Any]) -> CallbackMode | None:
    effects = stored_effects(params)
    return effects.callbacks if effects is not None else None


def link_ttl(params: Mapping[str, Any]) -> int | None:
    effects = stored_effects(params)
    return effects.link_ttl_s if effects is not None else None


# --- prompt directives ------------------------------------------------------------------------

_DIRECTIVE = re.compile(r"\[\[\s*sandbox\s*:\s*([^\]=]*?)\s*(?:=\s*([^\]]*?)\s*)?\]\]", re.I)
KNOWN_DIRECTIVES = (
    "[[sandbox:fail]], [[sandbox:fail=content_policy]], [[sandbox:slow=SECONDS]],"
    " [[sandbox:stall]], [[sandbox:crash]]"
)


def strip_directives(prompt: str) -> str:
    """The prompt without directives, whitespace collapsed."""
    return " ".join(_DIRECTIVE.sub(" ", prompt).split())


def parse_directives(prompt: str) -> Effects | None:
    """The effects the prompt's directives ask for; None without directives.

    Raises :class:`ScenarioError` naming an unknown or malformed directive.
    """
    found = False
    failure: str | None = None
    slow_s = 0.0
    stall = crash = False
    for match in _DIRECTIVE.finditer(prompt):
        found = True
        name, value = match.group(1).lower(), match.group(2)
        if name == "fail":
            failure = failure_message(value)
        elif name == "slow":
            slow_s = _directive_seconds(value)
        elif name == "stall" and value is None:
            stall = True
        elif name == "crash" and value is None:
            crash = True
        else:
            raise ScenarioError(
                f"sandbox: unknown directive {match.group(0)} (known: {KNOWN_DIRECTIVES})"
            )
    if not found:
        return None
    return Effects(name=DIRECTIVES, failure=failure, slow_s=slow_s, stall=stall, crash=crash)


def failure_message(value: str | bool | None) -> str:
    """``fail``'s value as a task_status_msg: a reason name, true, or a message of its own."""
    if value is None or value == "" or value is True:
        return SIMULATED_FAILURE
    if not isinstance(value, str):
        raise ScenarioError(f"sandbox: fail must be true, a reason or a message, got {value!r}")
    reason = _FAIL_REASONS.get(value.lower())
    if reason is not None:
        return reason
    if re.fullmatch(r"[a-z_]+", value):  # looks like a reason name, so a typo
        known = ", ".join(sorted(_FAIL_REASONS))
        raise ScenarioError(f"sandbox: unknown failure reason {value!r} (known: {known})")
    return value


def _directive_seconds(value: str | None) -> float:
    try:
        seconds = float(value or "")
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_SLOW_SECONDS:  # also rejects nan
        raise ScenarioError(
            f"sandbox: [[sandbox:slow=SECONDS]] needs a number of seconds in"
            f" 0..{MAX_SLOW_SECONDS:g}, got {value!r}"
        )
    return seconds


# --- rules from the scenarios file ------------------------------------------------------------


def _refusable_codes() -> dict[int, type[ReelgateError]]:
    """Codes a rule may refuse with: every code of the error tree, each with its class."""
    codes: dict[int, type[ReelgateError]] = {}
    pending: list[type[ReelgateError]] = [ReelgateError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if type(error_for_code(cls.code, cls.http_status, "")) is cls:
            codes[cls.code] = cls
    return dict(sorted(codes.items()))


REFUSABLE = _refusable_codes()


class Rule(BaseModel):
    """One ``[[scenarios]]`` entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    prompt: str | None = Field(None, min_length=1)
    prompt_regex: str | None = Field(None, min_length=1)
    external_task_id_prefix: str | None = Field(None, min_length=1)
    refuse: int | None = None
    message: str | None = Field(None, min_length=1)
    retry_after: float | None = Field(None, ge=0, le=86400)
    times: int | None = Field(None, ge=1)
    fail: bool | str | None = None
    slow: float = Field(0.0, ge=0, le=MAX_SLOW_SECONDS)
    stall: bool = False
    crash: bool = False
    callbacks: CallbackMode | None = None
    link_ttl: int | None = Field(None, ge=1, le=86400 * 30)

    @field_validator("prompt_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"is not a regular expression: {exc}") from None
        return value

    @field_validator("refuse")
    @classmethod
    def _known_code(cls, value: int | None) -> int | None:
        if value is not None and value not in REFUSABLE:
            known = ", ".join(str(c) for c in sorted(REFUSABLE))
            raise ValueError(f"{value} is not a code of the error tree (known: {known})")
        return value

    @field_validator("fail")
    @classmethod
    def _fail_value(cls, value: bool | str | None) -> bool | str | None:
        if value is None or value is False:
            return None
        try:
            failure_message(value)
        except ScenarioError as exc:
            raise ValueError(str(exc)) from None
        return value

    def matches(self, prompt: str, external_task_id: str | None) -> bool:
        if self.prompt is not None and self.prompt.casefold() in prompt.casefold():
            return True
        if self.prompt_regex is not None and re.search(self.prompt_regex, prompt):
            return True
        prefix = self.external_task_id_prefix
        return prefix is not None and (external_task_id or "").startswith(prefix)

    def effects(self) -> Effects:
        return Effects(
            name=self.name,
            failure=failure_message(self.fail) if self.fail is not None else None,
            slow_s=self.slow,
            stall=self.stall,
            crash=self.crash,
            callbacks=self.callbacks,
            link_ttl_s=self.link_ttl,
        )

    def refusal(self) -> ReelgateError | None:
        """The error a create gets from this rule (when it refuses)."""
        if self.refuse is None:
            return None
        cls = REFUSABLE[self.refuse]
        err = cls(self.message or f"sandbox scenario {self.name!r}: {cls.default_message}")
        err.retry_after = self.retry_after
        return err


@dataclass(frozen=True)
class Choice:
    """What the rules and directives chose for one create."""

    rule: Rule | None  # the rule that matched
    effects: Effects | None  # what the worker applies (None: render normally)


class ScenarioBook:
    """The rules of a scenarios file, in order."""

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.rules = list(rules)
        names = [r.name for r in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ScenarioError(f"scenario name(s) {twice} are used more than once")
        self._by_name = {r.name: r for r in self.rules}

    @classmethod
    def from_toml(cls, text: str, source: str = "scenarios") -> ScenarioBook:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
        unknown = sorted(set(data) - {"scenarios"})
        if unknown:
            raise ScenarioError(f"{source}: unknown table(s) {unknown}; expected [[scenarios]]")
        entries = data.get("scenarios", [])
        if not isinstance(entries, list):
            raise ScenarioError(f"{source}: 'scenarios' must be an array of tables")
        rules = []
        for i, entry in enumerate(entries, 1):
            where = f"{source}: [[scenarios]] entry {i}"
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                where += f" ({entry['name']!r})"
            try:
                rules.append(Rule.model_validate(entry))
            except ValidationError as exc:
                raise ScenarioError(f"{where}: {describe_validation_error(exc)}") from None
        return cls(rules)

    @classmethod
    def from_file(cls, path: Path) -> ScenarioBook:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ScenarioError(f"cannot read scenarios file {path}: {exc}") from None
        return cls.from_toml(text, str(path))

    def choose(self, prompt: str, external_task_id: str | None, header: str | None) -> Choice:
        """The rule for a create (header first, then the first matching rule), merged with the
        prompt's directives. A header naming no rule is 400/1201."""
        rule: Rule | None = None
        if header is not None and header.strip():
            rule = self._by_name.get(header.strip())
            if rule is None:
                known = ", ".join(self._by_name) or "none configured"
                shown = header.strip()[:100]  # a hostile header is not echoed whole
                raise InvalidParameterError(
                    f"{SCENARIO_HEADER}: {shown!r} names no scenario (known: {known})"
                )
        else:
            rule = next((r for r in self.rules if r.matches(prompt, external_task_id)), None)
        try:
            directives = parse_directives(prompt)
        except ScenarioError as exc:  # the task fails with the message, as it always has
            directives = Effects(name=DIRECTIVES, failure=str(exc))
        effects = rule.effects() if rule is not None else None
        if effects is not None and directives is not None:
            effects = effects.merged(directives)
        return Choice(rule, effects or directives)


@dataclass(frozen=True)
class ControlState:
    """What ``/_sandbox`` asked of one running task (read by the sandbox engine)."""

    released: bool = False  # a stall ends; the task goes on as its scenario says
    finish: bool = False  # every remaining stall and slow-down is skipped
    advanced_s: float = 0.0  # the task's clock runs this much ahead
