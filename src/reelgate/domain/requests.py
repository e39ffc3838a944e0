"""Request models for task creation: the same models validate on the server and in the SDK."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .errors import InvalidParameterError, NotFoundError

PROMPT_MAX = 2500
EXTERNAL_ID_MAX = 256
CALLBACK_URL_MAX = 2048

Mode = Literal["std", "pro"]
Sound = Literal["on", "off"]
# Kling's three, then the four only the ``cometapi`` profile accepts (domain/profiles.py); a
# model's capabilities say which it serves.
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3"]
CameraType = Literal["simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward"]
CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")


DURATION_DIGITS_MAX = 4  # no model renders a clip of 10000 s or more


def _parse_duration(value: Any) -> int:
    """Kling sends ``"5"``; many clients send ``5``. Both mean five seconds."""
    if isinstance(value, bool):
        raise ValueError('must be a whole number of seconds, as a string such as "5"')
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        # ASCII digits only ("²".isdigit() is true), and few of them (int() of thousands of
        # digits is slow, then refused).
        if text.isascii() and text.isdigit() and len(text) <= DURATION_DIGITS_MAX:
            return int(text)
    raise ValueError('must be a whole number of seconds, as a string such as "5"')


# Published as Kling documents it (a string); an integer is accepted too.
DURATION_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": "^[0-9]{1,4}$",
    "examples": ["5", "10"],
    "description": 'seconds, a string such as "5" (an integer 5 is accepted too);'
    " the model declares the range: 5 or 10, kling-v3 3..15",
}


def _default_as_string(schema: dict[str, Any]) -> None:
    schema["default"] = str(schema.get("default", 5))


# --- text rules: what a client may put in a string field ------------------------------------

LINE_BREAKS = "\t\n\r"  # the only control characters a prompt may contain


def _forbidden_character(value: str, allowed: str = "") -> str | None:
    """The first control character or unpaired surrogate in ``value`` (not in ``allowed``)."""
    for ch in value:
        if ch not in allowed and unicodedata.category(ch) in ("Cc", "Cs"):
            return ch
    return None


def check_text(value: str, allowed: str = "") -> str:
    """A pydantic rule: no control characters (NUL included) except ``allowed``."""
    ch = _forbidden_character(value, allowed)
    if ch is not None:
        raise ValueError(f"must not contain control characters (found U+{ord(ch):04X})")
    return value


def check_task_ident(value: str) -> str:
    """What a task id or an ``external_task_id`` may be: 1..256 characters, no control ones.

    The same rule guards the path of ``GET /v1/videos/text2video/{id}``, so an id that breaks it
    can never exist and is never sent to the store.
    """
    if not 1 <= len(value) <= EXTERNAL_ID_MAX:
        raise ValueError(f"must have 1..{EXTERNAL_ID_MAX} characters")
    return check_text(value)


def require_task_ident(ident: str) -> None:
    """404/1203 for a path id that no task can have (see :func:`check_task_ident`)."""
    try:
        check_task_ident(ident)
    except ValueError as exc:
        raise NotFoundError(f"task not found: a task id {exc}") from None


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def check_http_url(value: str) -> str:
    """An absolute http(s) URL with a valid host name or IP literal and a port in 1..65535."""
    from urllib.parse import urlsplit

    if any(ch.isspace() for ch in value) or _forbidden_character(value) is not None:
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError as exc:  # e.g. an unclosed or invalid [IPv6] literal
        raise ValueError(f"must be an absolute http(s) URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("must be an absolute http(s) URL")
    try:
        port = parts.port
    except ValueError:  # ":99999", ":abc", ":-1"
        port = 0
    if port == 0:
        raise ValueError("port must be a number in 1..65535")
    try:
        ipaddress.ip_address(host)
        return value
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"host {host!r} is not a valid host name") from None
    labels = ascii_host.removesuffix(".").split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"host {host!r} is not a valid host name")
    return value


Duration = Annotated[
    int,
    BeforeValidator(_parse_duration),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(DURATION_SCHEMA, mode="validation"),
]
Axis = Annotated[float, Field(ge=-10, le=10)]
CallbackUrl = Annotated[
    str, Field(max_length=CALLBACK_URL_MAX, json_schema_extra={"format": "uri"})
]


class WireRequest(BaseModel):
    """A request object: ``null`` for an optional field means the field is absent.

    Unknown fields are ignored, as real clients send extras.
    """

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class CameraConfig(WireRequest):
    """``simple`` camera movement: exactly one of the six axes is non-zero."""

    horizontal: Axis = Field(0, description="translate along x; negative moves left")
    vertical: Axis = Field(0, description="translate along y; negative moves down")
    pan: Axis = Field(0, description="rotate about y; negative turns left")
    tilt: Axis = Field(0, description="rotate about x; negative tilts down")
    roll: Axis = Field(0, description="rotate about z; negative is counter-clockwise")
    zoom: Axis = Field(0, description="focal length; negative narrows the view")

    @model_validator(mode="after")
    def _exactly_one_axis(self) -> CameraConfig:
        non_zero = [axis for axis in CAMERA_AXES if getattr(self, axis) != 0]
        if len(non_zero) != 1:
            raise ValueError(
                "exactly one of horizontal, vertical, pan, tilt, roll, zoom must be non-zero"
                f" (got {len(non_zero)})"
            )
        return self

    def axis(self) -> tuple[str, float]:
        """The single non-zero axis and its value."""
        for name in CAMERA_AXES:
            value = float(getattr(self, name))
            if value != 0:
                return name, value
        raise AssertionError("validated config has one non-zero axis")


class CameraControl(WireRequest):
    type: CameraType = Field(description="simple takes config; the four presets take none")
    config: CameraConfig | None = None

    @model_validator(mode="after")
    def _config_matches_type(self) -> CameraControl:
        if self.type == "simple" and self.config is None:
            raise ValueError("type simple requires config")
        if self.type != "simple" and self.config is not None:
            raise ValueError(f"type {self.type} takes no config (only simple does)")
        return self


class WatermarkInfo(WireRequest):
    enabled: bool = False


class Text2VideoRequest(WireRequest):
    """``POST /v1/videos/text2video``. Unknown fields are ignored, as real clients send extras;
    ``null`` for any optional field means the field is absent."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model_name: str | None = Field(
        None, max_length=100, description="a served model id or alias; default: server's default"
    )
    prompt: str = Field(min_length=1, max_length=PROMPT_MAX)
    negative_prompt: str = Field("", max_length=PROMPT_MAX)
    cfg_scale: float | None = Field(
        None,
        ge=0,
        le=1,
        description="prompt adherence in [0, 1]; default 0.5 where supported; accepted and"
        " ignored by models that do not support it (see capabilities.ignored in /v1/models)",
    )
    mode: Mode = Field("std", description="accepted and ignored by models without a mode choice")
    sound: Sound = Field("off", description="on only for models that generate audio")
    aspect_ratio: AspectRatio = "16:9"
    duration: Duration = Field(5, json_schema_extra=_default_as_string)
    camera_control: CameraControl | None = None
    watermark_info: WatermarkInfo | None = None
    callback_url: CallbackUrl | None = Field(
        None, description="absolute http(s) URL notified on every status change"
    )
    external_task_id: str | None = Field(None, min_length=1, max_length=EXTERNAL_ID_MAX)

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return check_http_url(value)

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _prompt_characters(cls, value: str) -> str:
        return check_text(value, allowed=LINE_BREAKS)

    @field_validator("model_name")
    @classmethod
    def _name_characters(cls, value: str | None) -> str | None:
        return None if value is None else check_text(value)

    @field_validator("external_task_id")
    @classmethod
    def _external_id(cls, value: str | None) -> str | None:
        return None if value is None else check_task_ident(value)

    @property
    def watermark(self) -> bool:
        return bool(self.watermark_info and self.watermark_info.enabled)


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """One ``field: rule`` per violation, with the field's dotted path (pydantic error dicts)."""
    lines = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        msg = str(err.get("msg", "is invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err.get("type") == "missing":
            msg = "is required"
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines)


def describe_validation_error(exc: ValidationError) -> str:
    return describe_errors(exc.errors(include_url=False))


def parse_text2video(payload: Any) -> Text2VideoRequest:
    """Validate a decoded JSON body, raising the contract's 1200/1201 errors."""
    if not isinstance(payload, dict):
        from .errors import InvalidRequestError

        raise InvalidRequestError("request body must be a JSON object")
    try:
        return Text2VideoRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidParameterError(describe_validation_error(exc)) from None
