"""Every family the engine claims, and every cache option the catalogue accepts, on tiny models.

Each tiny pipeline is built in code, detected from its own ``model_index.json`` and transformer
config as a real checkpoint would be, and run through the engine's generation process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
av = pytest.importorskip("av")
import numpy as np  # noqa: E402
import pytest_asyncio  # noqa: E402

from reelgate.domain.requests import Text2VideoRequest  # noqa: E402
from reelgate.engines.base import Job  # noqa: E402
from reelgate.engines.diffusers import DiffusersEngine, parse_entry  # noqa: E402

from .faulty_child import one_model_device  # noqa: E402
from .tiny_models import BUILDERS  # noqa: E402

pytestmark = [pytest.mark.diffusers]
in_module_loop = pytest.mark.asyncio(loop_scope="module")

SIZES = {"16:9": [64, 32], "9:16": [32, 64], "1:1": [32, 32]}
PROFILE = {"fps": 8, "steps": 3, "max_sequence_length": 16, "sizes": SIZES}
# tiny builder -> (detected family, frames for a 1 s clip at 8 fps)
FAMILY = {
    "wan": "wan2.1-1.3b",
    "wan-a14b": "wan2.2-a14b",
    "wan-ti2v": "wan2.2-ti2v-5b",
    "ltx": "ltx",
    "cogvideox": "cogvideox-2b",
    "hunyuan": "hunyuan",
}
FB = {"type": "first_block", "threshold": 0.05}
TAYLOR = {"type": "taylorseer"}
PAB = {"type": "pab", "spatial_attention_block_skip_range": 2}
FASTER = {"type": "faster", "spatial_attention_block_skip_range": 2}
MAG = {"type": "mag", "mag_ratios": [1.0, 0.99, 0.98]}
# every cache the catalogue accepts for each family (the refused ones are pinned in
# test_diffusers_mapping.py)
CACHES = {
    "wan": [FB, TAYLOR, PAB, MAG],
    "wan-a14b": [FB, TAYLOR, PAB],
    "wan-ti2v": [FB, TAYLOR, MAG],
    "ltx": [FB, TAYLOR, PAB, MAG],
    "cogvideox": [FB, TAYLOR, PAB, FASTER, MAG],
    "hunyuan": [FB, TAYLOR, PAB, FASTER, MAG],
}


def raw_entry(model_id: str, weights: Path, **keys: Any) -> dict[str, Any]:
    sizes = {k: v for k, v in SIZES.items() if k != "1:1" or "ti2v" not in model_id}
    base = {
        "id": model_id,
        "engine": "diffusers",
        "weights": str(weights),
        "device": "cpu",
        "durations": [1],
        "aspect_ratios": list(sizes),
        "profiles": {"std": PROFILE | {"sizes": sizes}},
    }
    return base | keys


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("weights")
    return {name: build(root / name) for name, build in BUILDERS.items()}


def cache_id(name: str, cache: dict[str, Any]) -> str:
    return f"{name}+{cache['type']}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(
    weights: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DiffusersEngine]:
    entries = [raw_entry(name, weights[name]) for name in FAMILY]
    for name, caches in CACHES.items():
        entries += [raw_entry(cache_id(name, c), weights[name], cache=c) for c in caches]
    eng = DiffusersEngine(entries, tmp_path_factory.mktemp("data"))
    yield eng
    await eng.aclose()


async def render(engine: DiffusersEngine, model_id: str, workdir: Path, **fields: Any) -> Any:
    spec = next(s for s in engine.models() if s.id == model_id)
    request = Text2VideoRequest.model_validate({"prompt": "a fox", "duration": 1} | fields)
    spec.check(request)
    out = await engine.generate(Job("t", spec, request, workdir), lambda p: None, lambda: False)
    with av.open(str(out.videos[0].path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@in_module_loop
@pytest.mark.parametrize("name", list(FAMILY))
async def test_each_family_is_detected_and_renders(engine, tmp_path, name):
    assert engine.entry(name).family.name == FAMILY[name]
    clip = await render(engine, name, tmp_path, aspect_ratio="9:16")
    assert clip.shape == (9, 64, 32, 3)  # 8 fps x 1 s + 1 frames on every frame grid here


@in_module_loop
@pytest.mark.slow
@pytest.mark.parametrize(
    "model_id", [cache_id(name, c) for name, caches in CACHES.items() for c in caches]
)
async def test_each_accepted_cache_runs(engine, tmp_path, model_id):
    clip = await render(engine, model_id, tmp_path)
    assert clip.shape == (9, 32, 64, 3)
    assert engine.health()[model_id].state == "ready"


@in_module_loop
async def test_least_recently_used_model_is_evicted_when_a_load_does_not_fit(
    weights: dict[str, Path], tmp_path: Path
):
    entries = [raw_entry("a", weights["wan"]), raw_entry("b", weights["ltx"])]
    # one_model_device runs the real generation process on a fake device with room for one
    engine = DiffusersEngine(entries, tmp_path / "data", process_target=one_model_device)
    try:
        first = await render(engine, "a", tmp_path / "1")
        await render(engine, "b", tmp_path / "2")
        health = engine.health()
        assert str(health["a"]) == "not_loaded: evicted to make room for b"
        assert health["b"].state == "ready"
        again = await render(engine, "a", tmp_path / "3")  # reloaded from disk, evicting b
        assert np.array_equal(first, again)
        assert str(engine.health()["b"]) == "not_loaded: evicted to make room for a"
        assert engine._devices["cpu"].starts == 1  # no crash, no restart
    finally:
        await engine.aclose()


def test_attention_backend_is_scoped_to_its_model(weights: dict[str, Path], tmp_path: Path):
    """diffusers keeps one active backend per process: one model's must not leak into others."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    from reelgate.engines.diffusers.loader import load_model
    from reelgate.engines.diffusers.mapping import GenerationPlan
    from reelgate.engines.diffusers.runner import generate

    def active() -> str:
        return str(_AttentionBackendRegistry.get_active_backend()[0].value)

    before = active()
    math = load_model(parse_entry(raw_entry("m", weights["wan"], attention_backend="_native_math")))
    plain = load_model(parse_entry(raw_entry("p", weights["ltx"])))
    assert active() == before  # loading "m" left the process-wide backend alone
    seen: dict[str, set[str]] = {"m": set(), "p": set()}
    for model_id, loaded in (("m", math), ("p", plain)):
        loaded.pipe.transformer.register_forward_pre_hook(
            lambda module, args, model_id=model_id: seen[model_id].add(active())
        )
    for loaded in (math, plain, math):
        plan = GenerationPlan(
            "t", loaded.entry.id, "std", "a fox", "", 64, 32, 9, 8, 2, 3.0, None, 1, tmp_path, False
        )
        generate(loaded, plan, lambda p: None, lambda: False)
    assert seen == {"m": {"_native_math"}, "p": {"native"}}
    assert active() == before


@in_module_loop
async def test_lora_profiles_switch_per_task_and_a14b_experts_get_their_own_files(
    weights: dict[str, Path], tmp_path: Path
):
    from .tiny_models import build_tiny_wan_lora

    high = build_tiny_wan_lora(weights["wan-a14b"], tmp_path / "high", seed=1)
    low = build_tiny_wan_lora(weights["wan-a14b"], tmp_path / "low", seed=2)
    # 4 steps at shift 12: the last one falls below the 0.875 boundary, on the low-noise expert
    lora = {"path": str(high), "path_2": str(low), "steps": 4, "guidance_scale": 1.0}
    profiles = {"std": PROFILE, "pro": PROFILE | {"lora": lora}}
    high_lora = {k: v for k, v in lora.items() if k != "path_2"}
    only_high = {"std": PROFILE, "pro": PROFILE | {"lora": high_lora}}
    distilled_schedule = {"std": PROFILE, "pro": PROFILE | {"steps": 4, "guidance_scale": 1.0}}
    entries = [
        raw_entry("both", weights["wan-a14b"], profiles=profiles),
        raw_entry("high", weights["wan-a14b"], profiles=only_high),
        raw_entry("none", weights["wan-a14b"], profiles=distilled_schedule),
    ]
    engine = DiffusersEngine(entries, tmp_path / "data")
    try:
        plain = await render(engine, "both", tmp_path / "1", mode="std")
        both = await render(engine, "both", tmp_path / "2", mode="pro")
        assert np.array_equal(plain, await render(engine, "both", tmp_path / "3", mode="std"))
        high_only = await render(engine, "high", tmp_path / "4", mode="pro")
        none = await render(engine, "none", tmp_path / "5", mode="pro")
        # the LoRA acts (pro differs from the same schedule without it), and the low-noise
        # expert's own file acts on its own (both files differ from the high-noise one alone)
        assert not np.array_equal(both, none) and not np.array_equal(high_only, none)
        assert not np.array_equal(both, high_only)
        assert engine.entry("both").profiles["pro"].steps == 4
    finally:
        await engine.aclose()


@in_module_loop
@pytest.mark.slow
@pytest.mark.parametrize(("name", "compile"), [("wan", "regional"), ("cogvideox", "full")])
async def test_compiled_model_warms_up_its_shapes_before_it_reports_ready(
    weights: dict[str, Path], tmp_path: Path, name: str, compile: str
):
    import asyncio

    entry = raw_entry("c", weights[name], compile=compile, aspect_ratios=["16:9"])
    engine = DiffusersEngine([entry], tmp_path / "data")
    try:
        warming = asyncio.ensure_future(engine.warm_up())
        states = set()
        while not warming.done():
            states.add(engine.health()["c"].state)
            await asyncio.sleep(0.05)
        await warming
        assert "starting" in states and str(engine.health()["c"]) == "ready: warmed up 1 shape(s)"
        clip = await render(engine, "c", tmp_path / "1")
        assert clip.shape == (9, 32, 64, 3)
    finally:
        await engine.aclose()


# diffusers' LTXConditionPipeline hands a tensor to numpy in a way numpy 2 deprecates
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_ltx_0_9_1_decodes_with_noise_and_runs_in_the_condition_pipeline(tmp_path: Path):
    """The timestep-aware VAE gets decode_timestep 0.05 / decode_noise_scale 0.025 unless the
    entry sets them; LTXConditionPipeline serves text-to-video from the same weights."""
    from reelgate.engines.diffusers.loader import LoadError, load_model
    from reelgate.engines.diffusers.mapping import GenerationPlan
    from reelgate.engines.diffusers.runner import generate, pipeline_kwargs

    from .tiny_models import build_tiny_ltx

    aware = build_tiny_ltx(
        tmp_path / "ltx-0.9.7", timestep_conditioning=True, dynamic_shifting=False
    )
    plain = build_tiny_ltx(tmp_path / "ltx-0.9.0")
    with pytest.raises(LoadError, match="LTXConditionPipeline needs a fixed-shift scheduler"):
        load_model(parse_entry(raw_entry("x", plain, pipeline="LTXConditionPipeline")))
    loaded = load_model(parse_entry(raw_entry("a", aware, pipeline="LTXConditionPipeline")))
    assert type(loaded.pipe).__name__ == "LTXConditionPipeline"
    plan = GenerationPlan(
        "t", "a", "std", "a fox", "", 64, 32, 9, 8, 2, 3.0, None, 1, tmp_path, False
    )
    kwargs = pipeline_kwargs(loaded, plan, None)
    assert (kwargs["decode_timestep"], kwargs["decode_noise_scale"]) == (0.05, 0.025)
    assert generate(loaded, plan, lambda p: None, lambda: False).frames == 9
    own = load_model(parse_entry(raw_entry("b", aware, call_kwargs={"decode_timestep": 0.1})))
    own_plan = dataclasses.replace(plan, call_kwargs=dict(own.entry.call_kwargs))
    assert pipeline_kwargs(own, own_plan, None)["decode_timestep"] == 0.1
    older = load_model(parse_entry(raw_entry("c", plain)))
    assert "decode_timestep" not in pipeline_kwargs(older, plan, None)
