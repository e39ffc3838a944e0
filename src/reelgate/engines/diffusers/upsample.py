"""LTX-Video 0.9.7+'s two-stage render, as its model card runs it (generation process only).

1. ``LTXConditionPipeline`` denoises at ``downscale`` of the requested size (rounded down to
   the VAE grid) and returns latents;
2. ``LTXLatentUpsamplePipeline`` (an ``LTXLatentUpsamplerModel`` sharing the VAE) doubles
   their width and height;
3. optionally, a short denoise at that size refines the texture: the same pipeline from the
   upsampled latents with ``denoise_strength`` (``steps x strength`` steps run), then decodes;
   without it the upsampler decodes;
4. the frames are resized to the requested size (bilinear, antialiased) when 2x stage 1 is not
   exactly it.

The entry's ``call_kwargs`` go to both denoising passes (the refine pass takes its own
``timesteps`` and overrides from ``upsampler.refine.call_kwargs``); decoding arguments
(``decode_timestep``, ``decode_noise_scale``) go to whichever call decodes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .entry import UpsamplerSpec

StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]
DECODE_ARGUMENTS = ("decode_timestep", "decode_noise_scale")


def load_upsampler(spec: UpsamplerSpec, device: str, pipe: Any, dtype_kwargs: Any) -> Any:
    """The ``LTXLatentUpsamplePipeline``, sharing ``pipe``'s VAE (as the model card)."""
    from diffusers import LTXLatentUpsamplePipeline

    upsampler: Any = LTXLatentUpsamplePipeline.from_pretrained(  # type: ignore[no-untyped-call]
        spec.weights, vae=pipe.vae, **dtype_kwargs
    )
    upsampler.set_progress_bar_config(disable=True)
    upsampler.latent_upsampler.to(device)
    return upsampler


def denoise_shapes(spec: UpsamplerSpec, width: int, height: int) -> list[tuple[int, int]]:
    """The (width, height) of each denoising pass: stage 1, and the refine pass if any."""
    w1, h1 = spec.stage_size(width, height)
    return [(w1, h1), (2 * w1, 2 * h1)] if spec.refine_steps else [(w1, h1)]


def render_two_stage(
    pipe: Any,
    upsampler: Any,
    spec: UpsamplerSpec,
    kwargs: dict[str, Any],
    callbacks: tuple[StepCallback, StepCallback],
) -> Any:
    """The frames (frames, channels, height, width, floats in [0, 1]) at ``kwargs``'s size."""
    import torch

    width, height = kwargs["width"], kwargs["height"]
    (w1, h1), *_ = denoise_shapes(spec, width, height)
    first = kwargs | {"width": w1, "height": h1, "output_type": "latent"}
    first["callback_on_step_end"] = callbacks[0]
    latents = pipe(**first).frames
    decode = {k: v for k, v in kwargs.items() if k in DECODE_ARGUMENTS}
    upsampled = upsampler(
        latents=latents,
        width=2 * w1,
        height=2 * h1,
        adain_factor=spec.adain_factor,
        tone_map_compression_ratio=spec.tone_map_compression_ratio,
        generator=kwargs.get("generator"),
        output_type="latent" if spec.refine_steps else "pt",
        **({} if spec.refine_steps else decode),
    ).frames
    del latents
    if spec.refine_steps:
        second = {k: v for k, v in kwargs.items() if k != "timesteps"}
        second |= dict(spec.refine_call_kwargs) | {
            "width": 2 * w1,
            "height": 2 * h1,
            "latents": upsampled,
            "num_inference_steps": spec.refine_steps,
            "denoise_strength": spec.denoise_strength,
            "callback_on_step_end": callbacks[1],
        }
        video = pipe(**second).frames[0]
    else:
        video = upsampled[0]
    if tuple(video.shape[-2:]) != (height, width):
        video = torch.nn.functional.interpolate(
            video.float(), size=(height, width), mode="bilinear", antialias=True
        ).clamp(0, 1)
    return video
