"""A parsed entry as the :class:`ModelSpec` the API validates requests against."""

from __future__ import annotations

from reelgate.domain.models import Capabilities, ModelSpec, Units

from .entry import ModelEntry

ENGINE_NAME = "diffusers"


def model_spec(entry: ModelEntry) -> ModelSpec:
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
    return ModelSpec(
        id=entry.id,
        engine=ENGINE_NAME,
        capabilities=caps,
        units=Units(per_clip=dict(entry.units_per_clip), per_second=dict(entry.units_per_second)),
        aliases=entry.aliases,
        description=entry.description,
        options={"family": entry.family.name, "weights": entry.weights, "device": entry.device},
    )
