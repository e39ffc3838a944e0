"""Memory and speed options of an entry: offload, VAE tiling, attention backend, compile,
caching hooks and FP8. Parsed here (no torch); applied by :mod:`.loader` in the generation
process, where an option the installed diffusers/torch/GPU cannot honour fails the load with a
message that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .reader import KeyReader

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
    fp8: str | None = None  # storage (layerwise casting) | torchao (FP8 matmuls, SM 8.9+)

    def without(self, *names: str) -> SpeedOptions:
        """A copy with the named options off (the benchmark's baseline rows)."""
        return SpeedOptions(
            compile=None if "compile" in names else self.compile,
            cache=None if "cache" in names else self.cache,
            fp8=None if "fp8" in names else self.fp8,
        )


def parse_memory_options(r: KeyReader) -> MemoryOptions:
    backend = r.string("attention_backend")
    if backend is not None and not backend.strip():
        raise r.error("attention_backend", "must name a backend such as flash, sage or native")
    return MemoryOptions(
        cpu_offload=r.off_or_choice("cpu_offload", OFFLOAD),
        vae_tiling=r.boolean("vae_tiling", False),
        attention_backend=backend,
    )


def parse_speed_options(r: KeyReader) -> SpeedOptions:
    return SpeedOptions(
        compile=r.off_or_choice("compile", COMPILE),
        cache=_cache(r),
        fp8=r.off_or_choice("fp8", FP8),
    )


def _cache(r: KeyReader) -> CacheSpec | None:
    if r.off_or_choice("cache", ()) is None and not isinstance(r.raw.get("cache"), Mapping):
        return None
    table = r.child("cache")
    if table is None:
        return None
    kind = table.choice("type", tuple(CACHES))
    if kind is None:
        raise table.error("type", f"is required (one of {', '.join(CACHES)})")
    params: dict[str, Any] = {}
    for name, value in table.raw.items():
        if name == "type":
            continue
        numbers = isinstance(value, list) and all(isinstance(v, int | float) for v in value)
        if not (isinstance(value, str | int | float | bool) or numbers):
            raise table.error(name, "must be a string, number, boolean or list of numbers")
        params[name] = value
    return CacheSpec(kind, params)
