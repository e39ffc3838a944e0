"""Request validation (contract §4): every field's rule, with messages naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from reelgate.domain.errors import InvalidParameterError, InvalidRequestError
from reelgate.domain.requests import parse_text2video


def bad(body: dict[str, Any], *fragments: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        parse_text2video(body)
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message
    assert info.value.code == 1201 and info.value.http_status == 400


def test_defaults() -> None:
    req = parse_text2video({"prompt": "a cat"})
    assert (req.mode, req.sound, req.aspect_ratio, req.duration) == ("std", "off", "16:9", 5)
    assert req.model_name is None and req.cfg_scale is None and not req.watermark


@pytest.mark.parametrize("duration", ["5", 5, "10", 10, " 7 "])
def test_duration_string_or_int(duration: Any) -> None:
    req = parse_text2video({"prompt": "x", "duration": duration})
    assert req.duration == int(str(duration).strip())
    assert req.model_dump(mode="json")["duration"] == str(req.duration)


@pytest.mark.parametrize("duration", [True, 5.5, "5s", "", [5], "²", "①", "\u0665", "9" * 5000])
def test_duration_rejects_non_integers(duration: Any) -> None:
    bad({"prompt": "x", "duration": duration}, "duration")


# Every optional field, with a value that differs from its default where null is absent.
OPTIONAL = {
    "model_name": "kling-v1",
    "negative_prompt": "blur",
    "cfg_scale": 0.3,
    "mode": "pro",
    "sound": "on",
    "aspect_ratio": "9:16",
    "duration": "10",
    "camera_control": {"type": "down_back"},
    "watermark_info": {"enabled": True},
    "callback_url": "https://example.com/hook",
    "external_task_id": "e-1",
}


@pytest.mark.parametrize("field", sorted(OPTIONAL))
def test_null_means_absent_for_every_optional_field(field: str) -> None:
    absent = parse_text2video({"prompt": "x"})
    null = parse_text2video({"prompt": "x", field: None})
    assert null == absent
    given = parse_text2video({"prompt": "x", field: OPTIONAL[field]})
    assert given != absent  # the sample value is not the default: the test can tell


def test_every_optional_field_is_covered_by_the_null_test() -> None:
    from reelgate.domain.requests import Text2VideoRequest

    optional = {n for n, f in Text2VideoRequest.model_fields.items() if not f.is_required()}
    assert optional == set(OPTIONAL)


def test_null_means_absent_in_nested_objects() -> None:
    req = parse_text2video(
        {
            "prompt": "x",
            "camera_control": {
                "type": "simple",
                "config": {"horizontal": None, "pan": 4, "tilt": None, "zoom": None},
            },
            "watermark_info": {"enabled": None},
        }
    )
    assert req.camera_control is not None and req.camera_control.config is not None
    assert req.camera_control.config.axis() == ("pan", 4.0)
    assert req.watermark_info is not None and req.watermark_info.enabled is False
    simple_null_config = {"type": "simple", "config": None}
    bad({"prompt": "x", "camera_control": simple_null_config}, "requires config")
    preset = parse_text2video(
        {"prompt": "x", "camera_control": {"type": "forward_up", "config": None}}
    )
    assert preset.camera_control is not None and preset.camera_control.config is None


def test_null_prompt_is_a_missing_prompt() -> None:
    bad({"prompt": None}, "prompt: is required")


def test_prompt_rules() -> None:
    bad({}, "prompt: is required")
    bad({"prompt": ""}, "prompt", "at least 1")
    bad({"prompt": "   "}, "prompt: must not be blank")
    bad({"prompt": "x" * 2501}, "prompt", "2500")
    assert parse_text2video({"prompt": "x" * 2500}).prompt == "x" * 2500
    bad({"prompt": 5}, "prompt", "string")


def test_negative_prompt_limit() -> None:
    bad({"prompt": "x", "negative_prompt": "n" * 2501}, "negative_prompt", "2500")


@pytest.mark.parametrize("value", [-0.1, 1.01, "high"])
def test_cfg_scale_range(value: Any) -> None:
    bad({"prompt": "x", "cfg_scale": value}, "cfg_scale")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mode", "standard"),
        ("mode", "professional"),
        ("sound", "yes"),
        ("aspect_ratio", "21:9"),  # 4:3 is wire-valid (cometapi); models refuse it
    ],
)
def test_enums(field: str, value: str) -> None:
    bad({"prompt": "x", field: value}, field)


def test_camera_control_rules() -> None:
    ok = {"type": "simple", "config": {"pan": -5}}
    req = parse_text2video({"prompt": "x", "camera_control": ok})
    assert req.camera_control is not None and req.camera_control.config is not None
    assert req.camera_control.config.axis() == ("pan", -5.0)
    bad({"prompt": "x", "camera_control": {"type": "simple"}}, "requires config")
    bad(
        {"prompt": "x", "camera_control": {"type": "simple", "config": {"pan": 1, "zoom": 1}}},
        "camera_control.config",
        "exactly one",
    )
    bad(
        {"prompt": "x", "camera_control": {"type": "simple", "config": {}}},
        "exactly one",
    )
    bad(
        {"prompt": "x", "camera_control": {"type": "simple", "config": {"roll": 11}}},
        "camera_control.config.roll",
        "10",
    )
    bad({"prompt": "x", "camera_control": {"type": "orbit"}}, "camera_control.type")
    bad(
        {"prompt": "x", "camera_control": {"type": "down_back", "config": {"pan": 1}}},
        "down_back takes no config",
    )
    for preset in ("down_back", "forward_up", "right_turn_forward", "left_turn_forward"):
        parse_text2video({"prompt": "x", "camera_control": {"type": preset}})


def test_callback_url_and_external_id() -> None:
    bad({"prompt": "x", "callback_url": "ftp://example.com/x"}, "callback_url", "http(s)")
    bad({"prompt": "x", "callback_url": "not a url"}, "callback_url")
    bad({"prompt": "x", "external_task_id": ""}, "external_task_id")
    bad({"prompt": "x", "external_task_id": "e" * 257}, "external_task_id")
    req = parse_text2video({"prompt": "x", "callback_url": "https://example.com/hook"})
    assert req.callback_url == "https://example.com/hook"


def test_unknown_fields_and_legacy_model_are_ignored() -> None:
    req = parse_text2video({"prompt": "x", "model": "kling-v1", "whatever": {"a": 1}})
    assert req.model_name is None


def test_watermark_info() -> None:
    assert parse_text2video({"prompt": "x", "watermark_info": {"enabled": True}}).watermark
    bad({"prompt": "x", "watermark_info": {"enabled": "maybe"}}, "watermark_info.enabled")


@pytest.mark.parametrize("payload", [[], "x", 5, None])
def test_non_object_body_is_1200(payload: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_text2video(payload)
    assert info.value.code == 1200


def test_several_violations_are_all_named() -> None:
    bad({"prompt": "", "mode": "fast"}, "prompt", "mode")
