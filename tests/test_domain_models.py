"""Kling's capability map and units (contract §8), and the catalogue's name resolution."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from reelgate.domain.errors import InvalidParameterError, NotFoundError
from reelgate.domain.kling import KLING_UNAVAILABLE, frame_size, kling_models
from reelgate.domain.models import Catalog, ModelSpec, format_units
from reelgate.domain.requests import parse_text2video

CATALOG = Catalog(kling_models(), known_unavailable=KLING_UNAVAILABLE)


def check(model: str, **fields: Any) -> None:
    spec = CATALOG.resolve(model)
    spec.check(parse_text2video({"prompt": "x", **fields}))


def rejected(model: str, fragment: str, **fields: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        check(model, **fields)
    assert fragment in info.value.message, info.value.message


def test_default_model_is_kling_v1() -> None:
    assert CATALOG.resolve(None).id == "kling-v1"
    assert CATALOG.resolve("").id == "kling-v1"


def test_unknown_and_unavailable_models() -> None:
    with pytest.raises(InvalidParameterError, match="model_name: kling-v9 is not a served model"):
        CATALOG.resolve("kling-v9")
    with pytest.raises(NotFoundError, match="image2video only"):
        CATALOG.resolve("kling-v1-5")


CAMERA = {"type": "simple", "config": {"zoom": 5}}


def test_camera_control_only_kling_v1_std_5s() -> None:
    check("kling-v1", camera_control=CAMERA)
    msg = "camera_control is only supported in std mode with 5s duration and kling-v1"
    rejected("kling-v1", msg, camera_control=CAMERA, mode="pro")
    rejected("kling-v1", msg, camera_control=CAMERA, duration="10")
    for model in ("kling-v1-6", "kling-v2-master", "kling-v2-5-turbo", "kling-v2-6", "kling-v3"):
        rejected(model, f"camera_control is not supported by {model}", camera_control=CAMERA)


def accepted(model: str, **fields: Any) -> dict[str, Any]:
    """What the engine gets: the accepted request as stored."""
    spec = CATALOG.resolve(model)
    return spec.accept(parse_text2video({"prompt": "x", **fields})).model_dump(exclude_none=True)


def test_cfg_scale_honoured_by_v1_accepted_and_ignored_by_v2_and_later() -> None:
    assert accepted("kling-v1", cfg_scale=0.7)["cfg_scale"] == 0.7
    assert accepted("kling-v1-6", cfg_scale=0)["cfg_scale"] == 0
    for model in (
        "kling-v2-master",
        "kling-v2-1-master",
        "kling-v2-5-turbo",
        "kling-v2-6",
        "kling-v3",
    ):
        assert "cfg_scale" not in accepted(model, cfg_scale=0.5)
        assert CATALOG.resolve(model).capabilities.ignored[-1] == "cfg_scale"
    assert CATALOG.resolve("kling-v1").capabilities.ignored == ()


def test_mode_ignored_by_v2_master_models() -> None:
    for model in ("kling-v2-master", "kling-v2-1-master"):
        assert accepted(model, mode="pro")["mode"] == "std"
        assert CATALOG.resolve(model).capabilities.ignored == ("mode", "cfg_scale")
    assert accepted("kling-v2-5-turbo", mode="pro")["mode"] == "pro"


# What Kling's first-party Python client and ComfyUI's Kling node send for every model.
CLIENT_DEFAULTS = {
    "negative_prompt": "",
    "cfg_scale": 0.5,
    "mode": "std",
    "sound": "off",
    "aspect_ratio": "16:9",
    "duration": "5",
    "watermark_info": {"enabled": False},
}


@pytest.mark.parametrize("model", [spec.id for spec in kling_models()])
def test_every_kling_model_accepts_what_kling_clients_send_by_default(model: str) -> None:
    check(model, **CLIENT_DEFAULTS)
    check(model, **{**CLIENT_DEFAULTS, "mode": "pro", "duration": 10})


def test_what_would_change_the_output_is_still_refused() -> None:
    rejected("kling-v2-master", "camera_control is not supported", camera_control=CAMERA)
    rejected("kling-v2-5-turbo", "sound: on is not supported", sound="on")
    rejected("kling-v2-6", "duration: 7 is not supported", duration="7")
    rejected("kling-v2-master", "duration: 15 is not supported", duration="15")
    with pytest.raises(InvalidParameterError, match="cfg_scale"):
        parse_text2video({"prompt": "x", "model_name": "kling-v2-6", "cfg_scale": 1.5})


def test_sound() -> None:
    for model in ("kling-v1", "kling-v1-6", "kling-v2-master", "kling-v2-5-turbo"):
        rejected(model, f"sound: on is not supported by {model}", sound="on")
    check("kling-v2-6", sound="on", mode="pro")
    rejected("kling-v2-6", "only supported in pro mode", sound="on", mode="std")
    check("kling-v3", sound="on", mode="std")
    check("kling-v1", sound="off")


def test_durations() -> None:
    for model in ("kling-v1", "kling-v1-6", "kling-v2-master", "kling-v2-5-turbo", "kling-v2-6"):
        check(model, duration="10")
        rejected(model, "duration: 7 is not supported", duration=7)
    for seconds in range(3, 16):
        check("kling-v3", duration=seconds)
    rejected("kling-v3", "supported: 3..15", duration=16)
    rejected("kling-v3", "duration: 2", duration=2)


def test_master_models_accept_and_ignore_mode() -> None:
    spec = CATALOG.resolve("kling-v2-master")
    check("kling-v2-master", mode="pro")
    assert spec.effective_mode("pro") == "std"
    assert frame_size(spec, "pro", "16:9") == (1280, 720)
    assert frame_size(CATALOG.resolve("kling-v2-1-master"), "std", "9:16") == (1080, 1920)


@pytest.mark.parametrize(
    ("model", "mode", "aspect", "size"),
    [
        ("kling-v1", "std", "16:9", (1280, 720)),
        ("kling-v1", "pro", "16:9", (1280, 720)),
        ("kling-v1", "std", "1:1", (960, 960)),
        ("kling-v1-6", "pro", "16:9", (1920, 1080)),
        ("kling-v1-6", "pro", "9:16", (1080, 1920)),
        ("kling-v2-6", "pro", "1:1", (1440, 1440)),
        ("kling-v3", "std", "9:16", (720, 1280)),
    ],
)
def test_frame_sizes(model: str, mode: str, aspect: str, size: tuple[int, int]) -> None:
    assert frame_size(CATALOG.resolve(model), mode, aspect) == size


def test_fps() -> None:
    fps = {spec.id: spec.options["fps"] for spec in kling_models()}
    assert fps.pop("kling-v1") == 30
    assert set(fps.values()) == {24}


@pytest.mark.parametrize(
    ("model", "fields", "units"),
    [
        ("kling-v1", {}, "1"),
        ("kling-v1", {"duration": "10"}, "2"),
        ("kling-v1", {"mode": "pro"}, "3.5"),
        ("kling-v1", {"mode": "pro", "duration": 10}, "7"),
        ("kling-v1-6", {}, "2"),
        ("kling-v1-6", {"mode": "pro"}, "3.5"),
        ("kling-v2-master", {}, "10"),
        ("kling-v2-1-master", {"duration": "10"}, "20"),
        ("kling-v2-5-turbo", {}, "1.5"),
        ("kling-v2-5-turbo", {"mode": "pro"}, "2.5"),
        ("kling-v2-6", {}, "1.5"),
        ("kling-v2-6", {"mode": "pro"}, "2.5"),
        ("kling-v2-6", {"mode": "pro", "sound": "on"}, "5"),
        ("kling-v2-6", {"mode": "pro", "sound": "on", "duration": 10}, "10"),
        ("kling-v3", {"duration": 3}, "1.8"),
        ("kling-v3", {"mode": "pro", "duration": 15}, "12"),
        ("kling-v3", {"sound": "on"}, "4.5"),
        ("kling-v3", {"sound": "on", "mode": "pro"}, "6"),
    ],
)
def test_units(model: str, fields: dict[str, Any], units: str) -> None:
    spec = CATALOG.resolve(model)
    assert format_units(spec.units_for(parse_text2video({"prompt": "x", **fields}))) == units


def test_format_units() -> None:
    assert format_units(Decimal("0")) == "0"
    assert format_units(Decimal("3.50")) == "3.5"
    assert format_units(Decimal("10")) == "10"
    assert format_units(Decimal("1E+1")) == "10"


def test_catalog_rejects_duplicate_names() -> None:
    a = ModelSpec(id="a", engine="sandbox", aliases=("b",))
    with pytest.raises(ValueError, match="served twice"):
        Catalog([a, ModelSpec(id="b", engine="sandbox")])


def test_aliases_resolve_to_their_model() -> None:
    spec = ModelSpec(id="wan", engine="diffusers", aliases=("kling-v2-6",))
    catalog = Catalog([spec])
    assert catalog.resolve("kling-v2-6") is spec
    assert catalog.default is spec
