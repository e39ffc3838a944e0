"""The text-to-video endpoints as request descriptions (:class:`Call`), shared by both clients.

Building a call validates the request with the same pydantic model the server uses, so a bad
value raises :class:`InvalidParameterError` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypedDict, TypeVar
from urllib.parse import quote

from pydantic import ValidationError

from reelgate.domain.requests import CameraControl, parse_text2video
from reelgate.domain.tasks import TaskData

from .errors import ServerError

T = TypeVar("T")

TEXT2VIDEO_PATH = "/v1/videos/text2video"
PAGE_SIZE_MAX = 500
PAGE_NUM_MAX = 1000


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its envelope's ``data``.

    ``recover`` is asked for when a retried request is refused after an earlier attempt may have
    been processed (a create whose first try timed out): it finds what that attempt did.
    """

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, int] | None = None
    json: Mapping[str, Any] | None = None
    recover: Call[T] | None = None


class CreateOptions(TypedDict, total=False):
    """Optional fields of ``text2video.create``; the server's defaults apply to those left out."""

    model_name: str
    negative_prompt: str
    cfg_scale: float
    mode: Literal["std", "pro"]
    sound: bool | Literal["on", "off"]
    aspect_ratio: Literal["16:9", "9:16", "1:1"]
    duration: int | str
    camera_control: CameraControl | Mapping[str, Any]
    watermark: bool
    callback_url: str
    external_task_id: str


def _task(data: Any) -> TaskData:
    return TaskData.model_validate(data)


def _tasks(data: Any) -> list[TaskData]:
    if not isinstance(data, list):
        raise ServerError(f"expected a list of tasks, got {type(data).__name__}", http_status=200)
    return [TaskData.model_validate(item) for item in data]


def parsed(call: Call[T], data: Any) -> T:
    """``call.parse(data)``; a body the contract does not allow is the server's fault."""
    try:
        return call.parse(data)
    except ValidationError as exc:
        raise ServerError(
            f"unexpected data from {call.method} {call.path}: {exc.errors()[0]['msg']}",
            http_status=200,
        ) from None


def create_body(prompt: str, options: CreateOptions) -> dict[str, Any]:
    """The JSON body for ``POST /v1/videos/text2video``, validated like the server does."""
    payload: dict[str, Any] = {"prompt": prompt}
    for key, value in options.items():
        if key == "watermark":
            payload["watermark_info"] = {"enabled": bool(value)}
        elif key == "sound" and isinstance(value, bool):
            payload["sound"] = "on" if value else "off"
        elif key == "camera_control" and isinstance(value, CameraControl):
            payload["camera_control"] = value.model_dump(exclude_none=True)
        else:
            payload[key] = value
    request = parse_text2video(payload)
    body = request.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    if request.camera_control is not None:  # all six axes, as Kling's own examples send them
        body["camera_control"] = request.camera_control.model_dump(mode="json", exclude_none=True)
    return body


def create(prompt: str, options: CreateOptions) -> Call[TaskData]:
    body = create_body(prompt, options)
    external_id = body.get("external_task_id")
    return Call(
        "POST",
        TEXT2VIDEO_PATH,
        _task,
        json=body,
        recover=get(external_id) if external_id else None,
    )


def get(task_id: str) -> Call[TaskData]:
    """One task by ``task_id`` or by the caller's ``external_task_id``."""
    if not task_id:
        raise ValueError("task_id must not be empty")
    return Call("GET", f"{TEXT2VIDEO_PATH}/{quote(task_id, safe='')}", _task)


def cancel(task_id: str) -> Call[TaskData]:
    """Cancel a task (reelgate extension). A retry after an attempt that may have gone through
    recovers by reading the task: the first attempt's cancel is the answer."""
    if not task_id:
        raise ValueError("task_id must not be empty")
    path = f"{TEXT2VIDEO_PATH}/{quote(task_id, safe='')}/cancel"
    return Call("POST", path, _task, recover=get(task_id))


def list_page(page: int = 1, page_size: int = 30) -> Call[list[TaskData]]:
    if not 1 <= page <= PAGE_NUM_MAX:
        raise ValueError(f"page must be in 1..{PAGE_NUM_MAX}, got {page}")
    if not 1 <= page_size <= PAGE_SIZE_MAX:
        raise ValueError(f"page_size must be in 1..{PAGE_SIZE_MAX}, got {page_size}")
    return Call("GET", TEXT2VIDEO_PATH, _tasks, params={"pageNum": page, "pageSize": page_size})
