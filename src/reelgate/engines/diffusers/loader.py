"""Load a pipeline for an entry and apply its memory and speed options (generation process only).

torch and diffusers are imported inside the functions: this module is importable, and its
errors are testable, without them. Every failure becomes :class:`LoadError`, whose message is
what the tasks needing the model report.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .entry import ModelEntry
from .families import is_local_path
from .lora import Adapters, load_adapters
from .mapping import GenerationPlan
from .options import CACHES, CacheSpec
from .upsample import load_upsampler

log = logging.getLogger("reelgate.engines.diffusers")


class LoadError(Exception):
    """The pipeline could not be loaded or an option could not be applied."""


class DeviceOutOfMemoryError(LoadError):
    """The device ran out of memory during the load (the caller may make room and retry)."""


@dataclass
class LoadedModel:
    """A warm pipeline plus what each profile switches on it before a call."""

    entry: ModelEntry
    pipe: Any
    denoisers: list[Any]
    schedulers: dict[str, Any]  # mode -> scheduler with that profile's flow shift
    adapters: Adapters | None = None  # the profiles' LoRAs, switched per call
    upsampler: Any = None  # LTX 0.9.7+: the LTXLatentUpsamplePipeline of a two-stage entry
    cache_steps: int | None = None
    call_defaults: dict[str, Any] = field(default_factory=dict)  # found at load (LTX's VAE)

    def attention(self) -> AbstractContextManager[Any]:
        """The scope of one call: diffusers keeps the active attention backend process-wide,
        and one process serves every model on its device, so each call sets its own."""
        from diffusers.models.attention_dispatch import attention_backend

        return attention_backend(self.entry.memory.attention_backend or "native")

    def release(self) -> None:
        """Drop the pipeline (evicted: its weights reload from disk when next needed)."""
        self.pipe = None
        self.adapters = None
        self.upsampler = None
        self.denoisers.clear()
        self.schedulers.clear()

    def prepare(self, plan: GenerationPlan) -> None:
        """Switch scheduler, LoRA and cache to ``plan``'s profile; clear per-call cache state."""
        pipe = self.pipe
        if plan.mode in self.schedulers:
            pipe.scheduler = self.schedulers[plan.mode]
        if self.adapters is not None:
            self.adapters.select(plan.mode)
        cache = self.entry.speed.cache
        if cache is not None and cache.type == "mag" and self.cache_steps != plan.steps:
            # MagCache's ratios are interpolated to the step count, so a profile with other
            # steps needs the hook rebuilt.
            for denoiser in self.denoisers:
                denoiser.disable_cache()
            _enable_cache(self, cache, plan.steps)
        for denoiser in self.denoisers:
            if hasattr(denoiser, "_reset_stateful_cache"):
                denoiser._reset_stateful_cache()


def load_model(entry: ModelEntry) -> LoadedModel:
    try:
        return _load(entry)
    except LoadError:
        raise
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA)
            raise DeviceOutOfMemoryError(str(exc).splitlines()[0][:300]) from exc
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise LoadError(f"{type(exc).__name__}: {text}"[:500]) from exc


def _load(entry: ModelEntry) -> LoadedModel:
    import diffusers
    import torch

    _check_weights(entry.weights)
    if entry.upsampler is not None:
        _check_weights(entry.upsampler.weights)
    _check_device(torch, entry.device)
    cls = getattr(diffusers, entry.pipeline, None)
    if cls is None:
        raise LoadError(f"diffusers {diffusers.__version__} has no {entry.pipeline}")
    dtypes = {"default": getattr(torch, entry.dtype)}
    dtypes |= {name: getattr(torch, dtype) for name, dtype in entry.component_dtypes.items()}
    pipe = cls.from_pretrained(entry.weights, **_dtype_argument(dtypes))
    loaded = configure(entry, pipe)
    if entry.upsampler is not None:
        loaded.upsampler = load_upsampler(
            entry.upsampler, entry.device, pipe, _dtype_argument(dtypes)
        )
    return loaded


def configure(entry: ModelEntry, pipe: Any) -> LoadedModel:
    """Apply the entry's options to a pipeline built in memory (the benchmark's random-weight
    models come here without a directory)."""
    import diffusers
    import torch

    pipe.set_progress_bar_config(disable=True)
    denoisers = [
        module
        for module in (getattr(pipe, "transformer", None), getattr(pipe, "transformer_2", None))
        if module is not None
    ]
    loaded = LoadedModel(entry, pipe, denoisers, {})
    if entry.speed.fp8 == "storage":
        for denoiser in denoisers:
            denoiser.enable_layerwise_casting(
                storage_dtype=torch.float8_e4m3fn, compute_dtype=getattr(torch, entry.dtype)
            )
    loaded.adapters = load_adapters(pipe, entry)
    _place(torch, pipe, entry)
    if loaded.adapters is not None:
        loaded.adapters.freeze_scales(denoisers)  # before compile: scales are graph inputs
    if entry.speed.fp8 == "torchao":
        _quantize_fp8(torch, denoisers, entry.device)
    if entry.memory.vae_tiling:
        pipe.vae.enable_tiling()
    if entry.memory.attention_backend:
        _set_attention_backend(denoisers, entry.memory.attention_backend)
    if entry.speed.cache is not None:
        _enable_cache(loaded, entry.speed.cache, next(iter(entry.profiles.values())).steps)
    if entry.speed.compile:
        fullgraph = entry.speed.cache is None  # cache hooks branch on data: graph breaks
        for denoiser in denoisers:
            if entry.speed.compile == "regional":
                denoiser.compile_repeated_blocks(fullgraph=fullgraph)
            else:
                denoiser.compile(fullgraph=fullgraph)
    if entry.family.scheduler is not None:
        scheduler_cls = getattr(diffusers, entry.family.scheduler)
        # as CogVideoX's reference demo: its DPM scheduler with trailing timesteps
        pipe.scheduler = scheduler_cls.from_config(
            pipe.scheduler.config, timestep_spacing="trailing"
        )
    if entry.pipeline == "LTXConditionPipeline" and pipe.scheduler.config.get(
        "use_dynamic_shifting"
    ):
        # it builds its own sigmas and passes no ``mu``; 0.9.7+ checkpoints ship a fixed shift
        raise LoadError(
            "LTXConditionPipeline needs a fixed-shift scheduler (use_dynamic_shifting = false,"
            " as LTX-Video 0.9.7+ ship); these weights are for LTXPipeline"
        )
    for mode, profile in entry.profiles.items():
        if profile.flow_shift is not None:
            loaded.schedulers[mode] = _with_flow_shift(pipe.scheduler, profile.flow_shift)
    vae_config = getattr(getattr(pipe, "vae", None), "config", {})
    if entry.family.name.startswith("ltx") and vae_config.get("timestep_conditioning"):
        # LTX-Video 0.9.1+: the timestep-aware VAE decodes with a little noise (diffusers docs)
        loaded.call_defaults = {"decode_timestep": 0.05, "decode_noise_scale": 0.025}
    return loaded


def _set_attention_backend(denoisers: list[Any], backend: str) -> None:
    """Pin ``backend`` on this model's attention layers, leaving the process-wide one as it was."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    previous = _AttentionBackendRegistry.get_active_backend()[0]  # type: ignore[no-untyped-call]
    try:
        for denoiser in denoisers:
            denoiser.set_attention_backend(backend)
    except (ValueError, RuntimeError, ImportError) as exc:
        raise LoadError(f"attention_backend {backend}: {exc}".splitlines()[0]) from exc
    finally:
        _AttentionBackendRegistry.set_active_backend(previous)


def _check_weights(weights: str) -> None:
    if not is_local_path(weights):
        return  # a hub id: diffusers downloads it (or finds it in its cache)
    root = Path(weights).expanduser()
    if not root.is_dir():
        raise LoadError(f"weights directory {root} does not exist")
    if not (root / "model_index.json").is_file():
        raise LoadError(f"{root} is not a diffusers pipeline directory (no model_index.json)")


def _check_device(torch: Any, device: str) -> None:
    kind, _, index = device.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise LoadError(f"device {device}: CUDA is not available to torch {torch.__version__}")
        if index and int(index) >= torch.cuda.device_count():
            raise LoadError(f"device {device}: only {torch.cuda.device_count()} GPU(s) visible")


def _dtype_argument(dtypes: dict[str, Any]) -> dict[str, Any]:
    """diffusers renamed ``torch_dtype`` to ``dtype`` (the old name warns)."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return {"torch_dtype": dtypes}
    return {"dtype": dtypes}


def _place(torch: Any, pipe: Any, entry: ModelEntry) -> None:
    device = entry.device
    offload = entry.memory.cpu_offload
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif offload == "group":
        pipe.enable_group_offload(
            onload_device=torch.device(device),
            offload_device=torch.device("cpu"),
            offload_type="leaf_level",
            use_stream=device.startswith("cuda"),
        )
    else:
        pipe.to(device)


def _quantize_fp8(torch: Any, denoisers: list[Any], device: str) -> None:
    if not device.startswith("cuda") or torch.cuda.get_device_capability(device) < (8, 9):
        raise LoadError(f"fp8 = torchao needs an NVIDIA GPU of compute capability 8.9+ ({device})")
    try:
        torchao: Any = importlib.import_module("torchao.quantization")
    except ImportError as exc:
        raise LoadError("fp8 = torchao needs the torchao package") from exc
    for denoiser in denoisers:
        torchao.quantize_(denoiser, torchao.Float8DynamicActivationFloat8WeightConfig())


def _enable_cache(loaded: LoadedModel, spec: CacheSpec, steps: int) -> None:
    import diffusers.hooks
    import torch

    cls = getattr(diffusers.hooks, CACHES[spec.type], None)
    if cls is None:
        raise LoadError(f"cache: this diffusers has no {CACHES[spec.type]}")
    fields = {f.name for f in dataclasses.fields(cls)}
    pipe = loaded.pipe
    for denoiser in loaded.denoisers:
        params: dict[str, Any] = dict(spec.params)
        if "current_timestep_callback" in fields:
            params["current_timestep_callback"] = lambda: pipe.current_timestep
        if spec.type == "mag":
            params["num_inference_steps"] = steps
        if spec.type == "faster" and loaded.entry.family.guidance_distilled:
            params.setdefault("is_guidance_distilled", True)  # no unconditional pass to skip
        if isinstance(params.get("taylor_factors_dtype"), str):
            params["taylor_factors_dtype"] = getattr(torch, params["taylor_factors_dtype"])
        try:
            denoiser.enable_cache(cls(**params))
        except (TypeError, ValueError) as exc:
            raise LoadError(f"cache ({spec.type}): {exc}".splitlines()[0]) from exc
    loaded.cache_steps = steps


def _with_flow_shift(scheduler: Any, shift: float) -> Any:
    config = scheduler.config
    if "flow_shift" in config and config.get("use_flow_sigmas"):
        return type(scheduler).from_config(config, flow_shift=shift)
    if "shift" in config and not config.get("use_dynamic_shifting"):
        return type(scheduler).from_config(config, shift=shift)
    raise LoadError(
        f"flow_shift {shift:g}: scheduler {type(scheduler).__name__} has no fixed flow shift"
    )
