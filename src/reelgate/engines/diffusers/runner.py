"""Run one plan on a warm pipeline and write the MP4 (generation process only).

Progress: denoising steps (of both passes of a two-stage LTX render) map to 0..90 %, decoding
ends at 95 %, the encoded MP4 at 100 %.
Cancellation is checked after every step: the pipeline's interrupt flag is set, and the call is
abandoned right there (see :func:`_step_callback`), so no frames of a cancelled task survive.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from .loader import LoadedModel
from .mapping import GenerationPlan
from .protocol import GenerationResult
from .timing import PhaseTimer
from .upsample import denoise_shapes, render_two_stage

log = logging.getLogger("reelgate.engines.diffusers")

STEPS_PERCENT = 90.0
DECODED_PERCENT = 95.0


class GenerationCancelledError(Exception):
    """The task was cancelled between steps; its partial output is discarded."""


class OutOfMemoryError(Exception):
    """The device ran out of memory; the message says what was being generated."""


def pipeline_kwargs(loaded: LoadedModel, plan: GenerationPlan, generator: Any) -> dict[str, Any]:
    """The arguments of the pipeline call for ``plan`` (the stock call in the benchmark too)."""
    entry = loaded.entry
    profile = entry.profile_for(plan.mode)
    kwargs: dict[str, Any] = {
        "prompt": plan.prompt,
        "height": plan.height,
        "width": plan.width,
        "num_frames": plan.num_frames,
        "num_inference_steps": plan.steps,
        "guidance_scale": plan.guidance_scale,
        "generator": generator,
        "output_type": "pt",
    }
    if plan.negative_prompt and entry.negative_prompt:
        kwargs["negative_prompt"] = plan.negative_prompt
    if profile.max_sequence_length is not None:
        kwargs["max_sequence_length"] = profile.max_sequence_length
    if entry.family.frame_rate_argument:
        kwargs["frame_rate"] = plan.fps
    if plan.guidance_scale_2 is not None:
        kwargs["guidance_scale_2"] = plan.guidance_scale_2
    kwargs.update(loaded.call_defaults)
    kwargs.update(plan.call_kwargs)
    return kwargs


def warm(loaded: LoadedModel, plan: GenerationPlan) -> None:
    """One denoising step of each of ``plan``'s shapes (two with an upsampler and a refine
    pass) and its profile, no decode: what compiles a shape."""
    import torch

    loaded.prepare(plan)
    kwargs = pipeline_kwargs(loaded, plan, torch.Generator(device="cpu").manual_seed(0))
    kwargs |= {"num_inference_steps": 1, "output_type": "latent"}
    kwargs.pop("timesteps", None)
    upsampler = loaded.entry.upsampler
    shapes = [(plan.width, plan.height)]
    if upsampler is not None:
        shapes = denoise_shapes(upsampler, plan.width, plan.height)
    with loaded.attention():
        for width, height in shapes:
            loaded.pipe(**kwargs | {"width": width, "height": height})


def generate(
    loaded: LoadedModel,
    plan: GenerationPlan,
    on_progress: Callable[[float], None],
    should_cancel: Callable[[], bool],
) -> GenerationResult:
    import torch

    device = loaded.entry.device
    cuda = device.startswith("cuda")
    timer = PhaseTimer(
        (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None),
        functools.partial(_peak_since_last, torch, device) if cuda else None,
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    loaded.prepare(plan)
    generator = torch.Generator(device="cpu").manual_seed(plan.seed)
    kwargs = pipeline_kwargs(loaded, plan, generator)
    upsampler = loaded.entry.upsampler
    refine_steps = upsampler.refine_steps_run() if upsampler is not None else 0
    total = plan.steps + refine_steps
    callbacks = (
        _step_callback(0, total, timer, on_progress, should_cancel),
        _step_callback(plan.steps, total, timer, on_progress, should_cancel),
    )
    try:
        with loaded.attention(), timer.around_call(loaded.pipe):
            if upsampler is None:
                kwargs["callback_on_step_end"] = callbacks[0]
                video = loaded.pipe(**kwargs).frames[0]
            else:
                video = render_two_stage(
                    loaded.pipe, loaded.upsampler, upsampler, kwargs, callbacks
                )
    except GenerationCancelledError:
        loaded.pipe.maybe_free_model_hooks()  # what the interrupted call would have done
        raise
    except torch.OutOfMemoryError as exc:
        raise OutOfMemoryError(
            f"out of GPU memory on {device} generating {plan.width}x{plan.height},"
            f" {plan.num_frames} frames with {plan.model_id}; try a shorter duration or std mode"
        ) from exc
    if should_cancel():
        raise GenerationCancelledError()
    on_progress(DECODED_PERCENT)
    # video: (frames, channels, height, width), floats in [0, 1]
    frames = (video * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    del video
    result = _encode(plan, frames)
    timer.encode_done()
    peaks = {k: v for k, v in timer.peaks.items() if k != "before"}
    peak = max(peaks.values()) if peaks else None
    return GenerationResult(
        **{**result, "timings": timer.phases(), "peak_memory_bytes": peak, "phase_peaks": peaks},
    )


def _peak_since_last(torch: Any, device: str) -> int:
    peak = int(torch.cuda.max_memory_allocated(device))
    torch.cuda.reset_peak_memory_stats(device)
    return peak


def _step_callback(
    steps_before: int,
    steps_total: int,
    timer: PhaseTimer,
    on_progress: Callable[[float], None],
    should_cancel: Callable[[], bool],
) -> Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]:
    def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        timer.step_done()
        on_progress(STEPS_PERCENT * min(1.0, (steps_before + step + 1) / steps_total))
        if should_cancel():
            # The flag makes the pipeline skip its remaining steps, but it would still decode
            # the half-denoised latents (tens of seconds at 720p) only for us to discard them;
            # raising abandons the call at this step instead.
            pipe._interrupt = True
            raise GenerationCancelledError()
        return {}

    return on_step_end


def _encode(plan: GenerationPlan, frames: Any) -> dict[str, Any]:
    from reelgate.media import encode_clip

    count, height, width = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
    if (count, width, height) != (plan.num_frames, plan.width, plan.height):
        log.warning(
            "%s: pipeline returned %dx%d, %d frames for a plan of %dx%d, %d frames",
            plan.model_id, width, height, count, plan.width, plan.height, plan.num_frames,
        )  # fmt: skip
    plan.workdir.mkdir(parents=True, exist_ok=True)
    path = plan.workdir / "video.mp4"
    watermarked = plan.workdir / "video-watermarked.mp4" if plan.watermark else None
    thumbnail = plan.workdir / "thumbnail.jpg"
    encode_clip(
        iter(frames),
        fps=plan.fps,
        width=width,
        height=height,
        out_path=path,
        watermarked_path=watermarked,
        thumbnail_path=thumbnail,
    )
    return {
        "video_path": str(path),
        "watermarked_path": str(watermarked) if watermarked else None,
        "thumbnail_path": str(thumbnail) if thumbnail.exists() else None,
        "duration": round(count / plan.fps, 3),
        "frames": count,
        "width": width,
        "height": height,
        "seed": plan.seed,
    }
