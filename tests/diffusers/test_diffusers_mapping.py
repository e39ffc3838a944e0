"""The diffusers engine without torch: entry parsing, model specs, and the request mapping."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reelgate.domain.errors import InvalidParameterError
from reelgate.domain.requests import Text2VideoRequest
from reelgate.engines.base import Job
from reelgate.engines.diffusers import DiffusersEngine, EntryError, parse_entry
from reelgate.engines.diffusers.families import FAMILIES, detect_family
from reelgate.engines.diffusers.mapping import (
    camera_phrase,
    frame_count,
    frame_size,
    guidance_for,
    plan_for,
    seed_for,
)
from reelgate.engines.diffusers.profiles import Profile


def entry(**keys: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "m", "engine": "diffusers", "weights": "org/model"}
    base.setdefault("family", "wan2.1")
    return base | keys


def profile(short: int, sizes: dict[str, tuple[int, int]] | None = None) -> Profile:
    return Profile("std", short, 16, 30, 5.0, (1.0, 10.0), None, 3.0, None, sizes or {})


@pytest.mark.parametrize(
    ("family", "short", "aspect", "size"),
    [
        ("wan2.1", 480, "16:9", (848, 480)),
        ("wan2.1", 480, "9:16", (480, 848)),
        ("wan2.1", 480, "1:1", (480, 480)),
        ("wan2.1", 720, "16:9", (1280, 720)),
        ("wan2.2-ti2v-5b", 704, "16:9", (1248, 704)),
        ("ltx", 512, "16:9", (896, 512)),
        ("ltx", 480, "9:16", (480, 864)),
        ("cogvideox", 480, "16:9", (848, 480)),
        ("cogvideox1.5", 768, "16:9", (1360, 768)),
        ("hunyuan", 544, "16:9", (960, 544)),
        ("hunyuan", 720, "16:9", (1280, 720)),
    ],
)
def test_frame_size_snaps_to_the_family_grid(family, short, aspect, size):
    grid = FAMILIES[family].size_multiple
    assert frame_size(aspect, profile(short), grid) == size
    assert size[0] % grid == 0 and size[1] % grid == 0


def test_profile_sizes_override_the_computed_size():
    assert frame_size("16:9", profile(480, {"16:9": (832, 480)}), 16) == (832, 480)


@pytest.mark.parametrize(
    ("family", "fps", "seconds", "frames"),
    [
        ("wan2.1", 16, 5, 81),
        ("wan2.1", 16, 10, 161),
        ("wan2.1", 16, 1, 17),
        ("wan2.2-ti2v-5b", 24, 5, 121),
        ("ltx", 24, 5, 121),
        ("ltx", 24, 10, 241),
        ("ltx", 25, 5, 129),  # 125 -> 128 (8k) + 1
        ("ltx", 30, 5, 153),
        ("cogvideox", 8, 6, 49),
        ("cogvideox", 8, 5, 41),
        ("cogvideox1.5", 16, 10, 161),
        ("hunyuan", 24, 5, 121),
        ("hunyuan", 25, 5, 125),
    ],
)
def test_frame_count_snaps_to_the_frame_grid(family, fps, seconds, frames):
    step = FAMILIES[family].frame_step
    assert frame_count(seconds, fps, step) == frames
    assert (frames - 1) % step == 0


def test_guidance_maps_cfg_scale_through_the_profile_default():
    assert guidance_for(None, 5.0, 1.0, 10.0) == 5.0
    assert guidance_for(0.5, 5.0, 1.0, 10.0) == 5.0  # Kling's default is the model's default
    assert guidance_for(0.0, 5.0, 1.0, 10.0) == 1.0
    assert guidance_for(1.0, 5.0, 1.0, 10.0) == 10.0
    assert guidance_for(0.25, 5.0, 1.0, 10.0) == 3.0
    assert guidance_for(0.75, 3.0, 1.0, 6.0) == 4.5
    assert guidance_for(0.9, 1.0, 1.0, 1.0) == 1.0  # a distilled profile ignores cfg_scale


def test_seed_is_stable_per_task():
    assert seed_for("task-1") == seed_for("task-1") != seed_for("task-2")
    assert 0 <= seed_for("x") < 2**32


def test_camera_control_becomes_a_prompt_phrase():
    req = Text2VideoRequest.model_validate(
        {"prompt": "p", "camera_control": {"type": "simple", "config": {"pan": -8}}}
    )
    assert req.camera_control is not None
    assert camera_phrase(req.camera_control) == "the camera quickly pans left"
    preset = Text2VideoRequest.model_validate(
        {"prompt": "p", "camera_control": {"type": "down_back"}}
    )
    assert preset.camera_control is not None
    assert "pulls back" in camera_phrase(preset.camera_control)


def test_entry_defaults_come_from_the_family():
    parsed = parse_entry(entry(family="wan2.2-a14b"))
    (only,) = parsed.profiles.values()
    assert (only.short_side, only.fps, only.steps) == (480, 16, 40)
    assert (only.guidance_scale, only.guidance_scale_2, only.flow_shift) == (4.0, 3.0, 12.0)
    assert parsed.durations == (1, 2, 3, 4, 5)  # 81 frames at 16 fps
    assert parsed.device == "cuda:0" and parsed.dtype == "bfloat16"
    assert parsed.vae_dtype == "float32"
    assert parse_entry(entry(family="ltx")).durations == tuple(range(1, 11))
    assert parse_entry(entry(family="cogvideox")).durations == tuple(range(1, 7))


def test_a_distilled_lora_brings_its_own_steps_and_fixed_guidance():
    lora = {"path": "/l.safetensors", "steps": 4, "guidance_scale": 1.0}
    parsed = parse_entry(entry(profiles={"pro": {"short_side": 720, "lora": lora}}))
    pro = parsed.profiles["pro"]
    assert (pro.steps, pro.guidance_scale, pro.guidance_range) == (4, 1.0, (1.0, 1.0))
    assert pro.flow_shift == 5.0  # Wan 2.1 at 720p
    assert pro.lora is not None and pro.lora.scale == 1.0


def test_family_is_detected_from_model_index(tmp_path: Path):
    def write(name: str, index: dict[str, Any], transformer: dict[str, Any] | None = None) -> str:
        root = tmp_path / name
        root.mkdir()
        (root / "model_index.json").write_text(json.dumps(index))
        if transformer is not None:
            (root / "transformer").mkdir()
            (root / "transformer" / "config.json").write_text(json.dumps(transformer))
        return str(root)

    wan = {"_class_name": "WanPipeline", "boundary_ratio": None, "transformer_2": [None, None]}
    assert detect_family(write("a", wan), None).name == "wan2.1"
    a14b = wan | {"boundary_ratio": 0.875, "transformer_2": ["diffusers", "Wan"]}
    assert detect_family(write("b", a14b), None).name == "wan2.2-a14b"
    assert detect_family(write("c", wan | {"expand_timesteps": True}), None).name == (
        "wan2.2-ti2v-5b"
    )
    cog = {"_class_name": "CogVideoXPipeline"}
    assert detect_family(write("d", cog, {"patch_size_t": 2}), None).name == "cogvideox1.5"
    assert detect_family(write("e", {"_class_name": "LTXPipeline"}), None).name == "ltx"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"weights": None}, "model m: weights: is required"),
        ({"family": None}, "weights: 'org/model' is not a local directory; set family"),
        ({"family": "sora"}, "model m: family: 'sora' is not one of"),
        ({"pipeline": "LTXPipeline"}, "pipeline: LTXPipeline does not run family wan2.1"),
        ({"device": "gpu0"}, "model m: device: 'gpu0' is not a torch device"),
        ({"dtype": "int8"}, "model m: dtype: 'int8' is not one of"),
        ({"durations": [5, 5]}, "model m: durations: must be a non-empty list of distinct"),
        ({"aspect_ratios": ["4:3"]}, "model m: aspect_ratios: '4:3' is not one of"),
        ({"stpes": 3}, "model m: stpes: unknown key"),
        ({"profiles": {"std": {"short_side": 500}}}, "profiles.std.short_side: 500 is not a"),
        ({"profiles": {"fast": {}}}, "model m: profiles.fast: unknown key"),
        ({"profiles": {"std": {"fps": 0}}}, "profiles.std.fps: must be a whole number in 1..120"),
        ({"profiles": {"std": {"guidance_scale_2": 3.0}}}, "only two-expert models use it"),
        ({"profiles": {"std": {"guidance_range": [6, 9]}}}, "guidance_range: needs 0 <= low"),
        ({"profiles": {"std": {"lora": {"scale": 1}}}}, "profiles.std.lora.path: is required"),
        ({"family": "ltx", "profiles": {"std": {"flow_shift": 3}}}, "has no fixed shift"),
        ({"cpu_offload": "disk"}, "model m: cpu_offload: 'disk' is not one of false, model"),
        ({"cpu_offload": "model", "device": "cpu"}, "offloading needs a GPU device"),
        ({"compile": "fast"}, "model m: compile: 'fast' is not one of false, regional, full"),
        ({"cache": {"threshold": 0.1}}, "model m: cache.type: is required"),
        ({"fp8": "e5m2"}, "model m: fp8: 'e5m2' is not one of false, storage, torchao"),
        ({"sound": True}, "model m: sound: family wan2.1 generates no audio"),
        ({"units": {"per_second": {"std": -1}}}, "units.per_second.std: -1 is not a price"),
        ({"family": "hunyuan", "negative_prompt": True}, "true_cfg_scale > 1"),
        ({"call_kwargs": {"x": [1]}}, "call_kwargs.x: must be a string, number or boolean"),
    ],
)
def test_bad_entries_name_the_model_and_key(keys, message):
    with pytest.raises(EntryError) as info:
        parse_entry({k: v for k, v in entry(**keys).items() if v is not None})
    assert message in str(info.value)


def spec_for(**keys: Any):
    (spec,) = DiffusersEngine([entry(**keys)], Path("/tmp/unused")).models()
    return spec


def test_spec_declares_capabilities_and_units():
    spec = spec_for(
        aliases=["kling-v2-5-turbo"],
        durations=[5],
        profiles={"std": {}, "pro": {"short_side": 720}},
        units={"per_second": {"std": 0.1, "pro": "0.25"}},
    )
    caps = spec.capabilities
    assert (caps.modes, caps.mode_choice, caps.durations) == (("std", "pro"), True, (5,))
    assert caps.sound_modes == () and caps.camera_modes == ()
    assert spec.aliases == ("kling-v2-5-turbo",)
    req = Text2VideoRequest(prompt="p", mode="pro", duration=5)
    assert str(spec.units_for(req)) == "1.25"
    assert str(spec.units_for(Text2VideoRequest(prompt="p", duration=5))) == "0.5"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sound": "on"}, "sound: on is not supported by m"),
        ({"camera_control": {"type": "down_back"}}, "camera_control is not supported by m"),
        ({"duration": 10}, "duration: 10 is not supported by m (supported: 1..5)"),
    ],
)
def test_unsupported_parameters_are_rejected_naming_the_model(fields, message):
    spec = spec_for()
    with pytest.raises(InvalidParameterError) as info:
        spec.check(Text2VideoRequest.model_validate({"prompt": "p", **fields}))
    assert message in info.value.message


def test_one_profile_serves_both_modes():
    spec = spec_for(profiles={"pro": {"short_side": 720}})
    spec.check(Text2VideoRequest(prompt="p", mode="std", duration=5))
    assert spec.effective_mode("std") == "pro"


def test_plan_maps_a_request(tmp_path: Path):
    engine = DiffusersEngine(
        [entry(camera_control=True, default_negative_prompt="blurry", seed=None)], tmp_path
    )
    spec = engine.models()[0]
    req = Text2VideoRequest.model_validate(
        {
            "prompt": "a fox runs.",
            "aspect_ratio": "9:16",
            "duration": "5",
            "cfg_scale": 1,
            "camera_control": {"type": "simple", "config": {"zoom": -2}},
        }
    )
    spec.check(req)
    plan = plan_for(engine.entry("m"), Job("task-9", spec, req, tmp_path), try_number=2)
    assert (plan.width, plan.height, plan.num_frames, plan.fps) == (480, 848, 81, 16)
    assert (plan.steps, plan.guidance_scale, plan.seed) == (50, 10.0, seed_for("task-9"))
    assert plan.prompt == "a fox runs. the camera slowly zooms in."
    assert plan.negative_prompt == "blurry" and plan.try_number == 2
    fixed = DiffusersEngine([entry(seed=7)], tmp_path)
    assert plan_for(fixed.entry("m"), Job("t", spec, req, tmp_path)).seed == 7


def test_package_and_models_work_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['diffusers'] = None\n"
        "from pathlib import Path\n"
        "from reelgate.engines.diffusers import DiffusersEngine\n"
        "e = DiffusersEngine([{'id': 'm', 'engine': 'diffusers', 'weights': 'a/b',"
        " 'family': 'ltx'}], Path('.'))\n"
        "print(e.models()[0].id, e.health()['m'].state)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["m", "not_loaded"]
