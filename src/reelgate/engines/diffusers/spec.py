"""A parsed entry as the :class:`ModelSpec` the API validates requests against."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reelgate.domain.models import Capabilities, ModelSpec, Units

from .entry import ModelEntry
from .reader import EntryError

ENGINE_NAME = "diffusers"


def model_spec(entry: ModelEntry, raw: Mapping[str, Any]) -> ModelSpec:
    modes = tuple(entry.profiles)
    camera_modes = modes if entry.camera_control else ()
    caps = Capabilities(
        modes=modes,
        mode_choice=len(modes) > 1,  # one profile serves both modes; ``mode`` is then ignored
        durations=entry.durations,
        aspect_ratios=entry.aspect_ratios,
        cfg_scale=entry.cfg_scale,
        negative_prompt=entry.negative_prompt,
        sound_modes=(),
        camera_modes=camera_modes,
        camera_durations=entry.durations if entry.camera_control else (),
    )
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise EntryError(f"model {entry.id}: aliases: must be a list of model names")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise EntryError(f"model {entry.id}: description: must be a string")
    profile = next(iter(entry.profiles.values()))
    default_description = (
        f"{entry.family.name} ({entry.pipeline}) from {entry.weights},"
        f" {profile.short_side}p @{profile.fps} fps"
    )
    options = {k: v for k, v in raw.items() if k not in ("id", "engine", "aliases", "description")}
    return ModelSpec(
        id=entry.id,
        engine=ENGINE_NAME,
        capabilities=caps,
        units=Units(per_clip=dict(entry.units_per_clip), per_second=dict(entry.units_per_second)),
        aliases=tuple(aliases),
        description=description or default_description,
        options=options,
    )
