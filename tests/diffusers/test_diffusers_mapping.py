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
from reelgate.engines.diffusers.families import FAMILIES, WAN_NEGATIVE_PROMPT, detect_family
from reelgate.engines.diffusers.mapping import (
    camera_phrase,
    frame_count,
    guidance_for,
    plan_for,
    seed_for,
)
from reelgate.engines.diffusers.profiles import computed_size


def entry(**keys: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "m", "engine": "diffusers", "weights": "org/model"}
    base.setdefault("family", "wan2.1-14b")
    return base | keys


def sizes_of(family: str, short_side: int | None = None, **keys: Any) -> dict[str, tuple[int, int]]:
    profile = {} if short_side is None else {"short_side": short_side}
    parsed = parse_entry(entry(family=family, profiles={"std": profile}, **keys))
    return dict(parsed.profiles["std"].sizes)


# What the model cards and the official repos list (see families.py for each source).
@pytest.mark.parametrize(
    ("family", "short", "sizes"),
    [
        ("wan2.1-1.3b", None, {"16:9": (832, 480), "9:16": (480, 832), "1:1": (624, 624)}),
        ("wan2.1-14b", 480, {"16:9": (832, 480), "9:16": (480, 832), "1:1": (624, 624)}),
        ("wan2.1-14b", 720, {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)}),
        ("wan2.2-a14b", 720, {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)}),
        ("wan2.2-ti2v-5b", None, {"16:9": (1280, 704), "9:16": (704, 1280)}),
        ("ltx", None, {"16:9": (896, 512), "9:16": (512, 896), "1:1": (512, 512)}),
        ("ltx", 480, {"16:9": (864, 480), "9:16": (480, 864), "1:1": (480, 480)}),
        ("cogvideox-2b", None, {"16:9": (720, 480)}),
        ("cogvideox-5b", None, {"16:9": (720, 480)}),
        ("cogvideox1.5", None, {"16:9": (1360, 768)}),
        ("hunyuan", None, {"16:9": (960, 544), "9:16": (544, 960), "1:1": (720, 720)}),
        ("hunyuan", 720, {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)}),
    ],
)
def test_each_family_renders_its_trained_sizes(family, short, sizes):
    assert sizes_of(family, short) == sizes
    grid = FAMILIES[family].size_multiple
    assert all(w % grid == 0 and h % grid == 0 for w, h in sizes.values())


def test_a_square_wan_clip_is_the_square_nearest_in_area_and_the_description_says_so():
    for short, (w, h) in ((480, (832, 480)), (720, (1280, 720))):
        side = sizes_of("wan2.1-14b", short)["1:1"][0]
        assert all(abs(side**2 - w * h) <= abs(s**2 - w * h) for s in range(16, 1280, 16))
    description = parse_entry(entry()).description
    assert "1:1 is not an official Wan size" in description and "1:1 624x624" in description


def test_profile_sizes_override_the_family_size():
    parsed = parse_entry(entry(profiles={"std": {"sizes": {"16:9": [848, 480]}}}))
    assert parsed.profiles["std"].sizes["16:9"] == (848, 480)
    assert computed_size("16:9", 512, 32) == (896, 512)


@pytest.mark.parametrize(
    ("family", "steps", "guidance", "shift", "fps", "durations", "dtype", "components"),
    [
        # Wan2.1 README: 1.3B at guidance 6, shift 8-12
        ("wan2.1-1.3b", 50, 6.0, 8.0, 16, (1, 2, 3, 4, 5), "bfloat16", {"vae": "float32"}),
        # Wan's generate.py: T2V shift 5.0 (3.0 at 480p is its I2V setting)
        ("wan2.1-14b", 50, 5.0, 5.0, 16, (1, 2, 3, 4, 5), "bfloat16", {"vae": "float32"}),
        ("wan2.2-a14b", 40, 4.0, 12.0, 16, (1, 2, 3, 4, 5), "bfloat16", {"vae": "float32"}),
        ("wan2.2-ti2v-5b", 50, 5.0, 5.0, 24, (1, 2, 3, 4, 5), "bfloat16", {"vae": "float32"}),
        ("ltx", 50, 3.0, None, 24, tuple(range(1, 11)), "bfloat16", {}),
        ("ltx-distilled", 8, 1.0, None, 24, tuple(range(1, 11)), "bfloat16", {}),
        ("cogvideox-2b", 50, 6.0, None, 8, (1, 2, 3, 4, 5, 6), "float16", {}),
        ("cogvideox-5b", 50, 6.0, None, 8, (1, 2, 3, 4, 5, 6), "bfloat16", {}),
        ("cogvideox1.5", 50, 6.0, None, 16, (5, 10), "bfloat16", {}),
        (
            "hunyuan",
            50,
            6.0,
            7.0,
            24,
            (1, 2, 3, 4, 5),
            "bfloat16",
            {"vae": "float16", "text_encoder": "float16", "text_encoder_2": "float16"},
        ),
    ],
)
def test_family_defaults(family, steps, guidance, shift, fps, durations, dtype, components):
    parsed = parse_entry(entry(family=family))
    (only,) = parsed.profiles.values()
    assert (only.steps, only.guidance_scale, only.flow_shift, only.fps) == (
        steps,
        guidance,
        shift,
        fps,
    )
    assert (parsed.durations, parsed.dtype, dict(parsed.component_dtypes)) == (
        durations,
        dtype,
        components,
    )
    on_cpu = parse_entry(entry(family=family, device="cpu"))
    assert (on_cpu.dtype, dict(on_cpu.component_dtypes)) == ("float32", {})


def test_wan_uses_its_standard_negative_prompt_when_the_client_sends_none(tmp_path: Path):
    engine = DiffusersEngine([entry(), entry(id="l", family="ltx")], tmp_path)
    specs = {s.id: s for s in engine.models()}
    req = Text2VideoRequest(prompt="a fox", duration=5)
    wan = plan_for(engine.entry("m"), Job("t", specs["m"], req, tmp_path))
    assert wan.negative_prompt == WAN_NEGATIVE_PROMPT and "色调艳丽" in wan.negative_prompt
    assert plan_for(engine.entry("l"), Job("t", specs["l"], req, tmp_path)).negative_prompt == ""
    own = Text2VideoRequest(prompt="a fox", duration=5, negative_prompt="rain")
    assert plan_for(engine.entry("m"), Job("t", specs["m"], own, tmp_path)).negative_prompt == (
        "rain"
    )


def test_cogvideox_1_5_samples_with_the_dpm_scheduler_and_dynamic_cfg():
    parsed = parse_entry(entry(family="cogvideox1.5"))
    assert parsed.family.scheduler == "CogVideoXDPMScheduler"
    assert parsed.call_kwargs == {"use_dynamic_cfg": True}
    assert parse_entry(
        entry(family="cogvideox1.5", call_kwargs={"use_dynamic_cfg": False})
    ).call_kwargs == {"use_dynamic_cfg": False}


def test_an_explicit_timestep_schedule_sets_the_step_count(tmp_path: Path):
    schedule = [1000, 993, 987, 981, 975, 909, 725, 0.03]  # LTX 0.9.8 distilled
    engine = DiffusersEngine(
        [entry(family="ltx-distilled", call_kwargs={"timesteps": schedule})], tmp_path
    )
    (spec,) = engine.models()
    req = Text2VideoRequest(prompt="p", duration=5, cfg_scale=0.9)
    plan = plan_for(engine.entry("m"), Job("t", spec, req, tmp_path))
    assert (plan.steps, plan.guidance_scale, plan.call_kwargs["timesteps"]) == (8, 1.0, schedule)


def test_ltx_upsampler_entry_takes_the_model_card_stages_and_list_arguments():
    """LTX-Video 0.9.8 distilled, as its model card runs it: stage 1 at 2/3 of the size with its
    timestep list, the refine pass with its own; lists pass through as they are."""
    first = [1000, 993, 987, 981, 975, 909, 725, 0.03]
    second = [1000, 909, 725, 421, 0]
    shared = {"decode_timestep": [0.05], "decode_noise_scale": [0.025], "guidance_rescale": 0.7}
    refine = {"denoise_strength": 0.999, "call_kwargs": {"timesteps": second}}
    parsed = parse_entry(
        entry(
            family="ltx-distilled",
            call_kwargs={"timesteps": first} | shared,
            upsampler={"weights": "/up", "adain_factor": 1.0, "refine": refine},
        )
    )
    up = parsed.upsampler
    assert parsed.pipeline == "LTXConditionPipeline"  # the one the upsampler reads
    assert up is not None and up.weights == "/up" and up.adain_factor == 1.0
    assert parsed.call_kwargs["timesteps"] == first
    assert up.refine_call_kwargs == shared | {"timesteps": second}
    assert up.refine_steps_run() == 4  # int(5 x 0.999): the pipeline's own rule
    # 768x512 at 2/3, rounded down to the VAE's 32 grid as the model card does: 512x320
    assert up.stage_size(768, 512) == (512, 320)
    short = parse_entry(entry(family="ltx", upsampler="/up")).upsampler
    assert short is not None and (short.refine_steps, short.denoise_strength) == (10, 0.4)
    assert short.refine_steps_run() == 4
    plain = parse_entry(entry(family="ltx", upsampler={"weights": "/up", "refine": False}))
    assert plain.upsampler is not None and plain.upsampler.refine_steps == 0


@pytest.mark.parametrize(
    ("family", "fps", "seconds", "frames"),
    [
        ("wan2.1-14b", 16, 5, 81),
        ("wan2.1-14b", 16, 10, 161),
        ("wan2.1-1.3b", 16, 1, 17),
        ("wan2.2-ti2v-5b", 24, 5, 121),
        ("ltx", 24, 5, 121),
        ("ltx", 24, 10, 241),
        ("ltx", 25, 5, 129),  # 125 -> 128 (8k) + 1
        ("ltx", 30, 5, 153),
        ("cogvideox-5b", 8, 6, 49),  # 8N+1, N <= 6
        ("cogvideox-2b", 8, 1, 9),
        ("cogvideox1.5", 16, 5, 81),  # 16N+1
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
    assert parsed.component_dtypes == {"vae": "float32"}


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
    small = {"num_attention_heads": 12, "attention_head_dim": 128}  # Wan2.1-T2V-1.3B
    big = {"num_attention_heads": 40, "attention_head_dim": 128}  # Wan2.1-T2V-14B
    assert detect_family(write("a", wan, small), None).name == "wan2.1-1.3b"
    assert detect_family(write("a2", wan, big), None).name == "wan2.1-14b"
    a14b = wan | {"boundary_ratio": 0.875, "transformer_2": ["diffusers", "Wan"]}
    assert detect_family(write("b", a14b), None).name == "wan2.2-a14b"
    assert detect_family(write("c", wan | {"expand_timesteps": True}), None).name == (
        "wan2.2-ti2v-5b"
    )
    cog = {"_class_name": "CogVideoXPipeline"}
    assert detect_family(write("d", cog, {"patch_size_t": 2}), None).name == "cogvideox1.5"
    rotary = {"use_rotary_positional_embeddings": True}
    assert detect_family(write("d2", cog, rotary), None).name == "cogvideox-5b"
    assert detect_family(write("d3", cog, {}), None).name == "cogvideox-2b"
    assert detect_family(write("e", {"_class_name": "LTXPipeline"}), None).name == "ltx"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"weights": None}, "model m: weights: Field required"),
        ({"family": None}, "weights: 'org/model' is not a local directory; set family"),
        ({"family": "sora"}, "model m: family: 'sora' is not one of wan2.1-1.3b, wan2.1-14b"),
        ({"pipeline": "LTXPipeline"}, "pipeline: LTXPipeline does not run family wan2.1-14b"),
        ({"device": "gpu0"}, "model m: device: String should match pattern"),
        ({"dtype": "int8"}, "model m: dtype: Input should be 'bfloat16'"),
        ({"durations": [5, 5]}, "model m: durations: values must be distinct"),
        ({"aspect_ratios": ["4:3"]}, "model m: aspect_ratios.0: Input should be '16:9'"),
        ({"stpes": 3}, "model m: stpes: unknown key"),
        ({"profiles": {"std": {"stpes": 3}}}, "model m: profiles.std.stpes: unknown key"),
        ({"profiles": {"std": {"steps": "3"}}}, "profiles.std.steps: Input should be a valid int"),
        ({"profiles": {"std": {"short_side": 500}}}, "was trained at 480p, 720p only, not 500p"),
        ({"family": "ltx", "profiles": {"std": {"short_side": 500}}}, "500 is not a multiple"),
        (
            {"family": "wan2.1-1.3b", "profiles": {"pro": {"short_side": 720}}},
            "model m: profiles.pro.short_side: wan2.1-1.3b was trained at 480p only, not 720p",
        ),
        (
            {"family": "wan2.2-ti2v-5b", "aspect_ratios": ["1:1"]},
            "profiles.std.sizes.1:1: wan2.2-ti2v-5b has no 1:1 size at 704p (trained: 1280x704",
        ),
        ({"family": "cogvideox1.5", "durations": [6]}, "durations: cogvideox1.5 renders 5 or 10 s"),
        ({"family": "cogvideox-5b", "durations": [8]}, "cogvideox-5b renders 1 or 2 or 3"),
        ({"profiles": {"fast": {}}}, "model m: profiles.fast: Input should be 'std' or 'pro'"),
        ({"profiles": {"std": {"fps": 0}}}, "profiles.std.fps: Input should be greater than"),
        ({"profiles": {"std": {"guidance_scale_2": 3.0}}}, "only two-expert models use it"),
        ({"profiles": {"std": {"guidance_range": [6, 9]}}}, "guidance_range: needs low <="),
        ({"profiles": {"std": {"lora": {"scale": 1}}}}, "profiles.std.lora.path: Field required"),
        (
            {"profiles": {"std": {"lora": {"path": "a", "path_2": "b"}}}},
            "profiles.std.lora.path_2: wan2.1-14b has a single transformer",
        ),
        ({"family": "ltx", "profiles": {"std": {"flow_shift": 3}}}, "has no fixed shift"),
        ({"cpu_offload": "disk"}, "model m: cpu_offload: Input should be False, 'model'"),
        ({"cpu_offload": "model", "device": "cpu"}, "offloading needs a GPU device"),
        ({"compile": "fast"}, "model m: compile: Input should be False, 'regional' or 'full'"),
        ({"cache": {"threshold": 0.1}}, "model m: cache.type: Field required"),
        ({"fp8": "e5m2"}, "model m: fp8: Input should be False, 'storage' or 'torchao'"),
        ({"sound": True}, "model m: sound: unknown key"),
        ({"units": {"per_second": {"std": -1}}}, "units.per_second: std: -1 is not a price"),
        ({"family": "hunyuan", "negative_prompt": True}, "true_cfg_scale > 1"),
        ({"call_kwargs": {"x": {"y": 1}}}, "model m: call_kwargs.x"),
        # combinations that cannot work are refused when the catalogue is read
        ({"cache": {"type": "faster"}}, "model m: cache.type: faster needs the conditional and"),
        ({"family": "ltx", "cache": {"type": "faster"}}, "ltx's pipeline does not run them so"),
        (
            {
                "family": "hunyuan",
                "cache": {"type": "faster"},
                "call_kwargs": {"true_cfg_scale": 4},
            },
            "faster treats hunyuan as guidance-distilled",
        ),
        ({"cache": {"type": "mag"}}, "model m: cache.mag_ratios: MagCache needs the magnitude"),
        (
            {"family": "wan2.2-a14b", "cache": {"type": "mag", "mag_ratios": [1.0, 0.9]}},
            "model m: cache.type: mag cannot serve wan2.2-a14b's two experts",
        ),
        ({"cache": {"type": "pab"}}, "model m: cache: pab needs spatial_attention_block_skip"),
        ({"cache": {"type": "first_block", "threshold": {"a": 1}}}, "threshold must be a string"),
        (
            {"family": "cogvideox-5b", "compile": "regional"},
            "model m: compile: regional needs repeated transformer blocks, which cogvideox-5b",
        ),
        # LTX-Video 0.9.7+'s latent upsampler
        ({"upsampler": "/up"}, "model m: upsampler: only LTX-Video has a latent upsampler"),
        ({"family": "ltx", "upsampler": {}}, "model m: upsampler.weights: Field required"),
        ({"family": "ltx", "upsampler": 3}, "model m: upsampler: Input should be"),
        (
            {"family": "ltx", "upsampler": {"weights": "/up", "scale": 2}},
            "model m: upsampler.scale: unknown key",
        ),
        (
            {"family": "ltx", "upsampler": {"weights": "/up", "downscale": 0.1}},
            "model m: upsampler.downscale: Input should be greater than or equal to 0.25",
        ),
        (
            {"family": "ltx", "upsampler": {"weights": "/up", "refine": True}},
            "model m: upsampler.refine: Input should be",
        ),
        (
            {"family": "ltx", "upsampler": {"weights": "/up", "refine": {"denoise_strength": 0}}},
            "model m: upsampler.refine.denoise_strength: Input should be greater than 0",
        ),
        (
            {"family": "ltx", "upsampler": {"weights": "/up", "refine": {"steps": 2}}},
            "model m: upsampler.refine.denoise_strength: 0.4 runs no step",
        ),
        (
            {"family": "ltx", "upsampler": {"weights": "/up", "tone_map_compression_ratio": 2}},
            "model m: upsampler.tone_map_compression_ratio: Input should be less than",
        ),
        (
            {"family": "ltx", "pipeline": "LTXPipeline", "upsampler": "/up"},
            "model m: pipeline: upsampler needs LTXConditionPipeline",
        ),
        (
            {"family": "ltx", "upsampler": "/up", "cache": {"type": "mag", "mag_ratios": [1.0]}},
            "model m: cache.type: mag counts the steps of one call",
        ),
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
    assert (plan.width, plan.height, plan.num_frames, plan.fps) == (480, 832, 81, 16)
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
