"""Served models: capabilities, units, and the catalogue the API validates against."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import Field

from .errors import InvalidParameterError, NotFoundError
from .requests import Text2VideoRequest
from .timing import ModelTiming
from .wire import WireModel

ALL_MODES = ("std", "pro")
ALL_ASPECTS = ("16:9", "9:16", "1:1")


@dataclass(frozen=True)
class Capabilities:
    """What a model accepts. The API rejects anything outside this with 400/1201.

    Two parameters that Kling's own clients send by default are accepted and ignored where a
    model does not support them (as Kling does): ``mode`` without a mode choice, and
    ``cfg_scale``. What would change the output in a way the model cannot honour (sound,
    camera control, a non-empty negative prompt, durations, aspect ratios) is refused.
    """

    modes: tuple[str, ...] = ALL_MODES
    mode_choice: bool = True  # False: ``mode`` is accepted and ignored (Kling v2 master)
    durations: tuple[int, ...] = (5, 10)
    aspect_ratios: tuple[str, ...] = ALL_ASPECTS
    cfg_scale: bool = True
    negative_prompt: bool = True
    sound_modes: tuple[str, ...] = ()  # modes in which ``sound=on`` is allowed
    camera_modes: tuple[str, ...] = ()  # modes in which camera_control is allowed
    camera_durations: tuple[int, ...] = ()

    @property
    def ignored(self) -> tuple[str, ...]:
        """Request fields accepted and ignored: they never reach the engine."""
        return tuple(
            name
            for name, supported in (("mode", self.mode_choice), ("cfg_scale", self.cfg_scale))
            if not supported
        )

    def info(self) -> CapabilitiesInfo:
        return CapabilitiesInfo(
            modes=list(self.modes),
            mode_choice=self.mode_choice,
            durations=list(self.durations),
            aspect_ratios=list(self.aspect_ratios),
            cfg_scale=self.cfg_scale,
            negative_prompt=self.negative_prompt,
            ignored=list(self.ignored),
            sound=list(self.sound_modes),
            camera_control=CameraCapabilities(
                modes=list(self.camera_modes), durations=list(self.camera_durations)
            ),
        )

    def as_dict(self) -> dict[str, Any]:
        return self.info().wire()


class CameraCapabilities(WireModel):
    modes: list[str] = Field(description="modes in which camera_control is allowed")
    durations: list[int] = Field(description="durations (s) in which it is allowed")


class CapabilitiesInfo(WireModel):
    """What a model accepts (``/v1/models`` extension); anything else is 400/1201."""

    modes: list[str]
    mode_choice: bool = Field(description="false: mode is accepted and ignored")
    durations: list[int] = Field(description="seconds")
    aspect_ratios: list[str]
    cfg_scale: bool = Field(description="false: cfg_scale is accepted and ignored")
    negative_prompt: bool = Field(description="false: a non-empty negative_prompt is refused")
    ignored: list[str] = Field(
        description="request fields accepted and ignored by this model (Kling's clients send"
        " them by default)"
    )
    sound: list[str] = Field(description="modes in which sound=on is allowed")
    camera_control: CameraCapabilities


class UnitsInfo(WireModel):
    per_clip_5s: dict[str, str] = Field(description="units per 5 s clip by mode")
    per_second: dict[str, str] = Field(description='units per second by "mode" or "mode+sound"')


class ModelInfo(WireModel):
    """One served model as ``GET /v1/models`` lists it."""

    id: str
    engine: str
    aliases: list[str]
    description: str
    capabilities: CapabilitiesInfo
    units: UnitsInfo
    default: bool | None = Field(None, description="the model used when model_name is absent")
    health: str | None = Field(None, description='"ok", or why the model cannot serve now')


@dataclass(frozen=True)
class Units:
    """Units charged per task.

    ``per_clip`` maps a mode to the price of a 5 s clip (10 s costs twice that);
    ``per_second`` maps ``"mode"`` or ``"mode+sound"`` to a price per second.
    """

    per_clip: Mapping[str, Decimal] = field(default_factory=dict)
    per_second: Mapping[str, Decimal] = field(default_factory=dict)

    def for_request(self, mode: str, duration: int, sound: bool) -> Decimal:
        if self.per_second:
            rate = self.per_second.get(f"{mode}+sound" if sound else mode)
            if rate is None:
                rate = self.per_second.get(mode, Decimal(0))
            return rate * duration
        base = self.per_clip.get(mode, Decimal(0))
        return base * Decimal(duration) / Decimal(5)


def format_units(value: Decimal) -> str:
    """Decimal string as Kling writes it: ``"1"``, ``"3.5"``, ``"0"``."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0",) else "0"


@dataclass(frozen=True)
class ModelSpec:
    """One served text-to-video model."""

    id: str
    engine: str
    capabilities: Capabilities = Capabilities()
    units: Units = Units()
    aliases: tuple[str, ...] = ()
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)  # engine-specific entry keys
    timing: ModelTiming = field(
        default_factory=ModelTiming
    )  # the entry's submitted_s, processing_s, timeout_s

    def check(self, req: Text2VideoRequest) -> None:
        """Raise 400/1201 naming the field when ``req`` asks for what this model cannot do."""
        caps, name = self.capabilities, self.id
        mode = req.mode
        if caps.mode_choice and mode not in caps.modes:
            raise InvalidParameterError(
                f"mode: {mode} is not supported by {name} (supported: {', '.join(caps.modes)})"
            )
        if req.duration not in caps.durations:
            raise InvalidParameterError(
                f"duration: {req.duration} is not supported by {name}"
                f" (supported: {_ranges(caps.durations)})"
            )
        if req.aspect_ratio not in caps.aspect_ratios:
            raise InvalidParameterError(
                f"aspect_ratio: {req.aspect_ratio} is not supported by {name}"
                f" (supported: {', '.join(caps.aspect_ratios)})"
            )
        if req.negative_prompt and not caps.negative_prompt:
            raise InvalidParameterError(f"negative_prompt is not supported by {name}")
        if req.sound == "on" and self.effective_mode(mode) not in caps.sound_modes:
            if not caps.sound_modes:
                raise InvalidParameterError(f"sound: on is not supported by {name}")
            raise InvalidParameterError(
                f"sound: on is only supported in {'/'.join(caps.sound_modes)} mode with {name}"
            )
        if req.camera_control is not None:
            allowed = caps.camera_modes and (
                self.effective_mode(mode) in caps.camera_modes
                and req.duration in caps.camera_durations
            )
            if not allowed:
                if not caps.camera_modes:
                    raise InvalidParameterError(f"camera_control is not supported by {name}")
                raise InvalidParameterError(
                    f"camera_control is only supported in {'/'.join(caps.camera_modes)} mode"
                    f" with {'/'.join(f'{d}s' for d in caps.camera_durations)} duration"
                    f" and {name}"
                )

    def accept(self, req: Text2VideoRequest) -> Text2VideoRequest:
        """``req`` checked against this model (400/1201 naming the field when it asks for what
        the model cannot do), with the ignored fields reset: ``cfg_scale`` dropped where
        unsupported, ``mode`` the one the model renders in. This is what the engine gets."""
        self.check(req)
        update: dict[str, Any] = {}
        if not self.capabilities.cfg_scale and req.cfg_scale is not None:
            update["cfg_scale"] = None
        if self.effective_mode(req.mode) != req.mode:
            update["mode"] = self.effective_mode(req.mode)
        return req.model_copy(update=update) if update else req

    def effective_mode(self, mode: str) -> str:
        """The mode a model without a mode choice renders in."""
        return mode if self.capabilities.mode_choice else self.capabilities.modes[0]

    def phases(self, req: Text2VideoRequest, *, realistic: bool) -> tuple[float, float]:
        """(seconds in ``submitted``, least seconds in ``processing``) for ``req``."""
        mode = self.effective_mode(req.mode)
        return self.timing.phases(self.id, mode, req.duration, realistic=realistic)

    def units_for(self, req: Text2VideoRequest) -> Decimal:
        return self.units.for_request(
            self.effective_mode(req.mode), req.duration, req.sound == "on"
        )

    def info(self, *, default: bool | None = None, health: str | None = None) -> ModelInfo:
        return ModelInfo(
            id=self.id,
            engine=self.engine,
            aliases=list(self.aliases),
            description=self.description,
            capabilities=self.capabilities.info(),
            units=UnitsInfo(
                per_clip_5s={k: format_units(v) for k, v in self.units.per_clip.items()},
                per_second={k: format_units(v) for k, v in self.units.per_second.items()},
            ),
            default=default,
            health=health,
        )

    def as_dict(self) -> dict[str, Any]:
        return self.info().wire()


def _ranges(values: Iterable[int]) -> str:
    vals = sorted(values)
    if len(vals) > 2 and vals == list(range(vals[0], vals[-1] + 1)):
        return f"{vals[0]}..{vals[-1]}"
    return ", ".join(str(v) for v in vals)


class Catalog:
    """The served models, looked up by id or alias."""

    def __init__(
        self,
        specs: Iterable[ModelSpec],
        default: str | None = None,
        known_unavailable: Mapping[str, str] | None = None,
    ) -> None:
        self.specs: list[ModelSpec] = list(specs)
        if not self.specs:
            raise ValueError("a catalogue serves at least one model")
        self._by_name: dict[str, ModelSpec] = {}
        for spec in self.specs:
            for name in (spec.id, *spec.aliases):
                if name in self._by_name:
                    raise ValueError(f"model name {name!r} is served twice")
                self._by_name[name] = spec
        self.default = self.resolve(default) if default else self.specs[0]
        # names a client may know that this server does not offer, with the reason
        self._unavailable = dict(known_unavailable or {})

    def resolve(self, name: str | None) -> ModelSpec:
        if name is None or name == "":
            return self.default
        spec = self._by_name.get(name)
        if spec is not None:
            return spec
        if name in self._unavailable:
            raise NotFoundError(f"model_name: {name} is not available: {self._unavailable[name]}")
        served = ", ".join(s.id for s in self.specs)
        raise InvalidParameterError(f"model_name: {name} is not a served model (served: {served})")

    def get(self, model_id: str) -> ModelSpec | None:
        return self._by_name.get(model_id)

    @property
    def unavailable(self) -> dict[str, str]:
        """Names a client may know that this server does not offer, with the reason."""
        return dict(self._unavailable)
