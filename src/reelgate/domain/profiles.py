"""Fidelity profiles: whose documented limits the server enforces (``REELGATE_PROFILE``).

``kling`` (the default) follows Kling's official reference: prompts and negative prompts up to
2500 characters, aspect ratios ``16:9``, ``9:16``, ``1:1``. ``cometapi`` follows CometAPI's
gateway documentation for the same routes: prompt at most 500 characters, negative prompt at
most 200, and four more aspect ratios (``4:3``, ``3:4``, ``3:2``, ``2:3``) on the sandbox's
models (docs/reference/kling-api-sources.md §15).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import InvalidParameterError
from .models import ALL_ASPECTS, Catalog, ModelSpec
from .requests import PROMPT_MAX, Text2VideoRequest

GATEWAY_ASPECTS = ("4:3", "3:4", "3:2", "2:3")


@dataclass(frozen=True)
class Profile:
    name: str
    prompt_max: int = PROMPT_MAX
    negative_prompt_max: int = PROMPT_MAX
    extra_aspect_ratios: tuple[str, ...] = ()  # added to the sandbox models' capabilities

    @property
    def aspect_ratios(self) -> tuple[str, ...]:
        """Every aspect ratio a request may name under this profile."""
        return ALL_ASPECTS + self.extra_aspect_ratios

    def check(self, req: Text2VideoRequest) -> None:
        """400/1201 naming the field when ``req`` is over this profile's text limits."""
        for field, limit in (
            ("prompt", self.prompt_max),
            ("negative_prompt", self.negative_prompt_max),
        ):
            length = len(getattr(req, field))
            if length > limit:
                raise InvalidParameterError(
                    f"{field}: must have at most {limit} characters (got {length};"
                    f" {self.name} profile)"
                )

    def apply(self, catalog: Catalog) -> Catalog:
        """``catalog`` as this profile serves it: the sandbox models take the extra ratios."""
        if not self.extra_aspect_ratios:
            return catalog
        specs = [self._widen(spec) for spec in catalog.specs]
        return Catalog(specs, catalog.default.id, catalog.unavailable)

    def _widen(self, spec: ModelSpec) -> ModelSpec:
        caps = spec.capabilities
        if spec.engine != "sandbox" or caps.aspect_ratios != ALL_ASPECTS:
            return spec
        ratios = caps.aspect_ratios + self.extra_aspect_ratios
        return replace(spec, capabilities=replace(caps, aspect_ratios=ratios))


PROFILES = {
    "kling": Profile("kling"),
    "cometapi": Profile(
        "cometapi", prompt_max=500, negative_prompt_max=200, extra_aspect_ratios=GATEWAY_ASPECTS
    ),
}


def profile_named(name: str) -> Profile:
    profile = PROFILES.get(name.strip().lower())
    if profile is None:
        raise ValueError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    return profile
