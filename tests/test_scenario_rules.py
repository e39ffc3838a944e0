"""Scenario rules and fidelity profiles: parsing, matching and the errors they answer (domain)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelgate.domain.errors import (
    ConcurrencyLimitError,
    ContentPolicyError,
    InvalidParameterError,
    QuotaExceededError,
    ServiceUnavailableError,
)
from reelgate.domain.kling import kling_models
from reelgate.domain.models import Catalog
from reelgate.domain.profiles import PROFILES, profile_named
from reelgate.domain.requests import parse_text2video
from reelgate.domain.scenarios import (
    CONTENT_POLICY_FAILURE,
    DIRECTIVES,
    SIMULATED_FAILURE,
    ScenarioBook,
    ScenarioError,
)

BOOK = ScenarioBook.from_toml(
    """
[[scenarios]]
name = "busy"
external_task_id_prefix = "busy-"
refuse = 1303
retry_after = 2
times = 2

[[scenarios]]
name = "moderated"
prompt = "Forbidden"
fail = "content_policy"

[[scenarios]]
name = "night"
prompt_regex = "^night\\\\b"
slow = 3
callbacks = "twice"
link_ttl = 5

[[scenarios]]
name = "custom"
fail = "GPU melted"
"""
)


def test_rules_match_prompt_substring_regex_prefix_and_header_in_order() -> None:
    def chosen(prompt: str, ext: str | None = None, header: str | None = None) -> str | None:
        rule = BOOK.choose(prompt, ext, header).rule
        return rule.name if rule else None

    assert chosen("a fox", "busy-1") == "busy"
    assert chosen("something fORBIDDEN here") == "moderated"  # case-insensitive substring
    assert chosen("night falls") == "night"
    assert chosen("a night falls") is None  # the regex is anchored
    assert chosen("a fox", "calm-1") is None
    assert chosen("forbidden", "busy-2") == "busy"  # the first matching rule wins
    assert chosen("forbidden", header="custom") == "custom"  # a header beats the matchers


def test_effects_of_each_rule() -> None:
    moderated = BOOK.choose("forbidden", None, None).effects
    assert moderated is not None and moderated.failure == CONTENT_POLICY_FAILURE
    night = BOOK.choose("night", None, None).effects
    assert night is not None
    assert (night.slow_s, night.callbacks, night.link_ttl_s) == (3.0, "twice", 5)
    custom = BOOK.choose("x", None, "custom").effects
    assert custom is not None and custom.failure == "GPU melted"


def test_a_header_naming_no_scenario_is_1201_listing_the_known_ones() -> None:
    with pytest.raises(InvalidParameterError, match=r"X-Reelgate-Scenario: 'nope'.*busy"):
        BOOK.choose("a fox", None, "nope")


def test_directives_are_a_scenario_and_merge_with_a_rule() -> None:
    plain = BOOK.choose("[[sandbox:fail]] a fox", None, None)
    assert plain.rule is None and plain.effects is not None
    assert (plain.effects.name, plain.effects.failure) == (DIRECTIVES, SIMULATED_FAILURE)
    both = BOOK.choose("night [[sandbox:stall]]", None, None).effects
    assert both is not None and both.stall and both.slow_s == 3.0
    assert both.name == f"night+{DIRECTIVES}"
    typo = BOOK.choose("[[sandbox:slow=soon]] a fox", None, None).effects
    assert typo is not None and typo.failure is not None and "slow=SECONDS" in typo.failure
    assert BOOK.choose("a fox", None, None).effects is None


@pytest.mark.parametrize(
    ("code", "cls", "status"),
    [
        (1301, ContentPolicyError, 400),
        (1303, ConcurrencyLimitError, 429),
        (1102, QuotaExceededError, 429),
        (5001, ServiceUnavailableError, 503),
    ],
)
def test_refusals_take_their_status_from_the_error_tree(code: int, cls: type, status: int) -> None:
    book = ScenarioBook.from_toml(f'[[scenarios]]\nname = "r"\nrefuse = {code}\n')
    err = book.rules[0].refusal()
    assert isinstance(err, cls) and (err.code, err.http_status) == (code, status)
    assert err.retry_after is None
    busy = BOOK.rules[0].refusal()
    assert busy is not None and busy.retry_after == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[scenarios]]\nname = "a"\nrefuse = 1999\n', "refuse: 1999 is not a code"),
        ('[[scenarios]]\nname = "a"\nslwo = 3\n', "slwo: Extra inputs"),
        ('[[scenarios]]\nname = "a"\nprompt_regex = "("\n', "prompt_regex: is not a regular"),
        ('[[scenarios]]\nname = "a"\nfail = "content_polcy"\n', "unknown failure reason"),
        ('[[scenarios]]\nname = "a"\ncallbacks = "thrice"\n', "callbacks: Input should be"),
        ('[[scenarios]]\nname = "a"\n[[scenarios]]\nname = "a"\n', "used more than once"),
        ('[[scenario]]\nname = "a"\n', "unknown table"),
        ("[[scenarios]]\nname = \n", "not valid TOML"),
        ('[[scenarios]]\nname = "a b"\n', "name: String should match"),
    ],
)
def test_a_bad_scenarios_file_names_the_entry_and_the_key(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        ScenarioBook.from_toml(text, "s.toml")


def test_from_file_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenarios file"):
        ScenarioBook.from_file(tmp_path / "missing.toml")


def test_profiles_keep_one_definition_of_each_limit() -> None:
    kling, comet = PROFILES["kling"], profile_named("CometAPI")
    long_prompt = parse_text2video({"prompt": "x" * 501})
    kling.check(long_prompt)
    with pytest.raises(InvalidParameterError, match="prompt: must have at most 500 characters"):
        comet.check(long_prompt)
    negative = parse_text2video({"prompt": "a", "negative_prompt": "y" * 201})
    with pytest.raises(InvalidParameterError, match=r"negative_prompt: .* at most 200"):
        comet.check(negative)
    with pytest.raises(ValueError, match="unknown profile 'openai'"):
        profile_named("openai")
    catalog = Catalog(kling_models())
    assert kling.apply(catalog) is catalog
    widened = comet.apply(catalog)
    for spec in widened.specs:
        assert spec.capabilities.aspect_ratios == comet.aspect_ratios
        assert {"4:3", "3:4", "3:2", "2:3"} <= set(spec.capabilities.aspect_ratios)
