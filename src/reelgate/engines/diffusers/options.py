"""Memory and speed options of an entry, and which of them a family can take.

Memory options (offload, VAE tiling, FP8 storage) trade speed for room; speed options (compile,
caching hooks, FP8 matmuls through torchao) trade room or quality for speed. ``fp8 = "storage"``
stores weights in FP8 and upcasts each layer when it runs: it halves the transformer's memory
and is usually a little slower, so it is a memory option whatever key it sits under.

:func:`option_conflicts` holds every rule about a combination that cannot work with a family's
pipeline; the catalogue refuses such an entry with a message naming the key. Applied by
:mod:`.loader` in the generation process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .families import Family

OFFLOAD = ("model", "sequential", "group")
COMPILE = ("regional", "full")
FP8 = ("storage", "torchao")
# cache type -> diffusers config class (diffusers.hooks)
CACHES = {
    "first_block": "FirstBlockCacheConfig",
    "mag": "MagCacheConfig",
    "taylorseer": "TaylorSeerCacheConfig",
    "faster": "FasterCacheConfig",
    "pab": "PyramidAttentionBroadcastConfig",
}


@dataclass(frozen=True)
class MemoryOptions:
    cpu_offload: str | None = None  # model | sequential | group
    vae_tiling: bool = False
    attention_backend: str | None = None  # a diffusers attention backend, e.g. "flash", "sage"


@dataclass(frozen=True)
class CacheSpec:
    type: str  # a key of CACHES
    params: Mapping[str, Any] = field(default_factory=dict)  # the config class's arguments


@dataclass(frozen=True)
class SpeedOptions:
    compile: str | None = None  # regional (repeated blocks) | full
    cache: CacheSpec | None = None
    fp8: str | None = None  # storage (a memory option, see above) | torchao (SM 8.9+)

    def without(self, *names: str) -> SpeedOptions:
        """A copy with the named options off (the benchmark's baseline rows)."""
        return SpeedOptions(
            compile=None if "compile" in names else self.compile,
            cache=None if "cache" in names else self.cache,
            fp8=None if "fp8" in names else self.fp8,
        )


def option_conflicts(
    family: Family, speed: SpeedOptions, true_cfg: bool = False
) -> list[tuple[str, str]]:
    """(key, why) for each option the family's pipeline cannot run (``true_cfg``: a guidance-
    distilled model asked for a real unconditional pass, HunyuanVideo's true_cfg_scale > 1)."""
    out: list[tuple[str, str]] = []
    if speed.compile == "regional" and not family.repeated_blocks:
        out.append(
            ("compile", f"regional needs repeated transformer blocks, which {family.name} lacks;"
             " use compile = \"full\"")
        )  # fmt: skip
    cache = speed.cache
    if cache is None:
        return out
    if cache.type == "faster" and not family.faster_cache:
        out.append(
            ("cache.type", f"faster needs the conditional and unconditional passes in one batch"
             f" of video latents; {family.name}'s pipeline does not run them so"
             " (use first_block, taylorseer or pab)")
        )  # fmt: skip
    if cache.type == "faster" and family.guidance_distilled and true_cfg:
        out.append(
            ("cache.type", f"faster treats {family.name} as guidance-distilled, which"
             " call_kwargs.true_cfg_scale > 1 makes it no longer")
        )  # fmt: skip
    if cache.type == "mag":
        if "mag_ratios" not in cache.params and not cache.params.get("calibrate"):
            out.append(
                ("cache.mag_ratios", f"MagCache needs the magnitude ratios of {family.name}"
                 " (measure them once with calibrate = true)")
            )  # fmt: skip
        if family.experts > 1:
            out.append(
                ("cache.type", f"mag cannot serve {family.name}'s two experts: each would index"
                 " the ratios from step zero")
            )  # fmt: skip
    if cache.type == "pab" and not any(k.endswith("_block_skip_range") for k in cache.params):
        out.append(
            ("cache", "pab needs spatial_attention_block_skip_range (or a temporal or cross one)")
        )
    return out
