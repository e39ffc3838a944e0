"""Sandbox scenario directives and catalogue entries: parsing and validation (no rendering)."""

from __future__ import annotations

import pytest

from reelgate.domain.kling import kling_models
from reelgate.engines.base import EngineError
from reelgate.engines.sandbox import SandboxEngine
from reelgate.engines.sandbox.catalog import Behaviour
from reelgate.engines.sandbox.scenario import (
    CONTENT_POLICY_FAILURE,
    SIMULATED_FAILURE,
    Scenario,
    parse_scenario,
)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a red fox in snow", Scenario("a red fox in snow")),
        ("[[sandbox:fail]] a fox", Scenario("a fox", failure=SIMULATED_FAILURE)),
        ("a fox [[ Sandbox : FAIL = content_policy ]]", Scenario("a fox", CONTENT_POLICY_FAILURE)),
        ("a [[sandbox:slow=2.5]] fox", Scenario("a fox", slow_s=2.5)),
        ("a fox [[sandbox:stall]]", Scenario("a fox", stall=True)),
        ("[[sandbox:crash]]a fox", Scenario("a fox", crash=True)),
        (
            "[[sandbox:slow=1]] a fox [[sandbox:fail]]",
            Scenario("a fox", failure=SIMULATED_FAILURE, slow_s=1.0),
        ),
        ("[[sandbox:fail]]", Scenario("", failure=SIMULATED_FAILURE)),
        ("[[other:thing]] stays", Scenario("[[other:thing]] stays")),
    ],
)
def test_directives_are_parsed_and_removed(prompt: str, expected: Scenario) -> None:
    assert parse_scenario(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("[[sandbox:explode]] x", r"unknown directive \[\[sandbox:explode\]\]"),
        ("[[sandbox:fail-now]] x", "unknown directive"),
        ("[[sandbox:stall=3]] x", "unknown directive"),
        ("[[sandbox:fail=oops]] x", "unknown failure reason 'oops'"),
        ("[[sandbox:slow=soon]] x", "needs a number of seconds"),
        ("[[sandbox:slow=-1]] x", "needs a number of seconds"),
        ("[[sandbox:slow=nan]] x", "needs a number of seconds"),
        ("[[sandbox:slow=99999]] x", "needs a number of seconds"),
        ("[[sandbox:slow]] x", "needs a number of seconds"),
    ],
)
def test_bad_directives_fail_with_a_message(prompt: str, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        parse_scenario(prompt)


def test_without_entries_the_sandbox_serves_klings_models() -> None:
    engine = SandboxEngine([], None)
    assert engine.name == "sandbox"
    assert engine.models() == kling_models()


def test_entries_copy_a_kling_model() -> None:
    engine = SandboxEngine(
        [
            {
                "id": "fast-preview",
                "engine": "sandbox",
                "like": "kling-v2-6",
                "aliases": ["preview", "kling-v2-6"],
                "description": "quick",
                "delay_s": 1.5,
                "fail_rate": 0.25,
            },
            {"id": "kling-v1", "engine": "sandbox"},
        ],
        None,
    )
    preview, v1 = engine.models()
    kling = {spec.id: spec for spec in kling_models()}
    assert (preview.id, preview.engine, preview.aliases) == (
        "fast-preview",
        "sandbox",
        ("preview", "kling-v2-6"),
    )
    assert preview.description == "quick"
    assert preview.capabilities == kling["kling-v2-6"].capabilities
    assert preview.units == kling["kling-v2-6"].units
    assert (
        preview.options["fps"] == 24
        and preview.options["tiers"] == kling["kling-v2-6"].options["tiers"]
    )
    assert Behaviour.of(preview) == Behaviour(delay_s=1.5, fail_rate=0.25)
    assert v1.capabilities == kling["kling-v1"].capabilities
    assert Behaviour.of(v1) == Behaviour()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"engine": "sandbox"}, "'id' must be a non-empty string"),
        ({"id": "x", "engine": "sandbox"}, "'like' must name a Kling model"),
        ({"id": "x", "like": "kling-v9"}, "'like' must name a Kling model"),
        ({"id": "x", "like": "kling-v1", "delay": 2}, r"unknown key\(s\) \['delay'\]"),
        ({"id": "x", "like": "kling-v1", "aliases": "y"}, "'aliases' must be a list"),
        ({"id": "x", "like": "kling-v1", "fail_rate": 1.5}, "'fail_rate' must be within 0..1"),
        ({"id": "x", "like": "kling-v1", "delay_s": "2"}, "'delay_s' must be a number"),
        ({"id": "x", "like": "kling-v1", "description": 3}, "'description' must be a string"),
    ],
)
def test_bad_entries_are_rejected(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SandboxEngine([entry], None)


def test_fail_rate_is_deterministic_per_task_id() -> None:
    half = Behaviour(fail_rate=0.5)
    ids = [f"task-{i}" for i in range(2000)]
    fates = [half.fails(task_id) for task_id in ids]
    assert fates == [half.fails(task_id) for task_id in ids]
    assert 0.45 < sum(fates) / len(fates) < 0.55
    assert not any(Behaviour(fail_rate=0.0).fails(t) for t in ids)
    assert all(Behaviour(fail_rate=1.0).fails(t) for t in ids)
