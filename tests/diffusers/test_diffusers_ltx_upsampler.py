"""LTX-Video 0.9.7+'s two-stage render on tiny models: stage 1, latent upsampler, refine pass.

The tiny LTX VAE compresses 8x (the real one 32x) and the family grid is 32, so stage 1 of a
128x64 clip at downscale 0.5 is 64x32 (8x4 latents), the upsampler doubles it, and the refine
pass and decode run at 128x64.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
av = pytest.importorskip("av")
import numpy as np  # noqa: E402

from reelgate.engines.diffusers import DiffusersEngine, parse_entry  # noqa: E402
from reelgate.engines.diffusers.mapping import GenerationPlan  # noqa: E402

from .test_diffusers_families import raw_entry, render  # noqa: E402
from .tiny_models import build_tiny_ltx, build_tiny_ltx_upsampler  # noqa: E402

pytestmark = [
    pytest.mark.diffusers,
    # diffusers' LTXConditionPipeline hands a tensor to numpy in a way numpy 2 deprecates
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

REFINE = {"steps": 2, "denoise_strength": 0.5}


@pytest.fixture(scope="module")
def ltx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ltx-0.9.7")
    weights = build_tiny_ltx(root / "ltx", timestep_conditioning=True, dynamic_shifting=False)
    return weights, build_tiny_ltx_upsampler(root / "upscaler")


def upsampled_entry(weights: Path, upsampler: Path, size: list[int], **up: Any) -> dict[str, Any]:
    profile = {"fps": 8, "steps": 2, "max_sequence_length": 16, "sizes": {"16:9": size}}
    return raw_entry(
        "up",
        weights,
        aspect_ratios=["16:9"],
        profiles={"std": profile},
        upsampler={"weights": str(upsampler)} | up,
    )


def plan(entry: Any, workdir: Path, width: int, height: int) -> GenerationPlan:
    return GenerationPlan(
        "t", entry.id, "std", "a fox", "", width, height, 9, 8, 2, 3.0, None, 1, workdir, False,
        call_kwargs=dict(entry.call_kwargs),
    )  # fmt: skip


def run(loaded: Any, p: GenerationPlan) -> tuple[Any, list[float]]:
    from reelgate.engines.diffusers.runner import generate

    progress: list[float] = []
    result = generate(loaded, p, progress.append, lambda: False)
    with av.open(result.video_path) as container:
        clip = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return clip, progress


def test_stage_one_upsample_and_refine_render_the_requested_size(
    ltx: tuple[Path, Path], tmp_path: Path
):
    from reelgate.engines.diffusers.loader import load_model
    from reelgate.engines.diffusers.runner import warm

    weights, upsampler = ltx
    raw = upsampled_entry(weights, upsampler, [128, 64], downscale=0.5, refine=REFINE)
    entry = parse_entry(raw)
    loaded = load_model(entry)
    assert type(loaded.upsampler).__name__ == "LTXLatentUpsamplePipeline"
    assert loaded.upsampler.vae is loaded.pipe.vae  # shared, as the model card loads it
    shapes: list[tuple[int, ...]] = []
    loaded.pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["hidden_states"].shape)),
        with_kwargs=True,
    )
    upsampled: list[tuple[int, ...]] = []
    loaded.upsampler.latent_upsampler.register_forward_hook(
        lambda module, args, out: upsampled.append((tuple(args[0].shape), tuple(out.shape)))
    )
    clip, progress = run(loaded, plan(entry, tmp_path, 128, 64))
    assert clip.shape == (9, 64, 128, 3)
    # stage 1 at 64x32 (8x4 latents, 2 frames: 2 x 32 tokens), refine at 128x64 (2 x 128)
    assert {s[1] for s in shapes} == {64, 256}
    assert upsampled == [((1, 8, 2, 4, 8), (1, 8, 2, 8, 16))]
    # 2 stage-1 steps and int(2 x 0.5) = 1 refine step: progress climbs to 90 % once
    assert progress[:3] == [30.0, 60.0, 90.0]
    assert progress == sorted(progress)
    shapes.clear()
    warm(loaded, plan(entry, tmp_path, 128, 64))  # a compiled model warms both passes' shapes
    assert {s[1] for s in shapes} == {64, 256}


def test_without_refine_the_upsampler_decodes_and_frames_are_resized(
    ltx: tuple[Path, Path], tmp_path: Path
):
    """160x96 at the model card's 2/3: stage 1 at 96x64 (rounded down to the 32 grid), decoded
    at 192x128 by the upsampler with the entry's list-valued decode arguments, resized."""
    from reelgate.engines.diffusers.loader import load_model

    weights, upsampler = ltx
    raw = upsampled_entry(weights, upsampler, [160, 96], refine=False)
    raw["call_kwargs"] = {"decode_timestep": [0.05], "decode_noise_scale": [0.025]}
    entry = parse_entry(raw)
    loaded = load_model(entry)
    decoded: list[Any] = []
    original = loaded.upsampler.vae.decode

    def decode(latents: Any, timestep: Any = None, **kwargs: Any) -> Any:
        decoded.append((tuple(latents.shape), timestep.tolist()))
        return original(latents, timestep, **kwargs)

    loaded.upsampler.vae.decode = decode
    clip, _ = run(loaded, plan(entry, tmp_path, 160, 96))
    assert clip.shape == (9, 96, 160, 3)
    (shape, timestep), *_ = decoded
    assert shape[-2:] == (16, 24) and timestep == pytest.approx([0.05])


@pytest.mark.slow
async def test_two_stage_model_renders_through_the_engine(ltx: tuple[Path, Path], tmp_path: Path):
    weights, upsampler = ltx
    raw = upsampled_entry(weights, upsampler, [128, 64], downscale=0.5, refine=REFINE)
    engine = DiffusersEngine([raw], tmp_path / "data")
    try:
        clip = await render(engine, "up", tmp_path / "1")
        assert clip.shape == (9, 64, 128, 3)
        assert engine.entry("up").pipeline == "LTXConditionPipeline"
    finally:
        await engine.aclose()
