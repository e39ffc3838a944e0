"""Task states, the stored task record, and its wire form (contract §5 and §7)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

from pydantic import ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from .models import format_units
from .wire import WireModel


class TaskStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    PROCESSING = "processing"
    SUCCEED = "succeed"  # Kling's spelling
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.SUCCEED, TaskStatus.FAILED)


@dataclass
class TaskRecord:
    """A task as the store keeps it. Blob keys, never URLs: URLs are signed when read."""

    task_id: str
    account_id: int
    model_name: str
    params: dict[str, Any]
    status: TaskStatus
    created_at: int
    updated_at: int
    status_msg: str = ""
    progress: int = 0
    external_task_id: str | None = None
    callback_url: str | None = None
    watermark: bool = False
    result: dict[str, Any] = field(default_factory=dict)
    units: str = "0"
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: int | None = None
    cancel_reason: str | None = None  # a stop was asked for a running task; why
    run_after: int = 0  # not claimed before (Unix ms)
    started_at: int | None = None  # first claim (Unix ms)

    @property
    def cancelling(self) -> bool:
        """Running, and asked to stop: it ends ``failed`` once its worker sees the request."""
        return self.status is TaskStatus.PROCESSING and self.cancel_reason is not None


# task_status_msg of tasks ended by a cancel or a timeout (one wording for API, worker, store)
CANCELLED_BY_CLIENT = "task was cancelled by the client"
CANCEL_REQUESTED = "cancel requested by the client; stopping"


def timed_out_message(seconds: float) -> str:
    return f"timed out after {seconds:g} s in processing"


# A signer turns a blob key into a URL, or None when the blob is gone (retention).
Signer = Callable[[str], "str | None"]


class Video(WireModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(description="globally unique video id")
    url: str = Field(description="signed, expiring link to the MP4")
    watermark_url: str = Field("", description="the watermarked copy; empty when not asked for")
    duration: str = Field(description='seconds, a string such as "5"')
    thumbnail_url: str | SkipJsonSchema[None] = Field(
        None, description="extension: a JPEG of the first frame"
    )


class TaskResult(WireModel):
    """``{}`` until the task succeeded (and after its outputs expired), then its videos."""

    model_config = ConfigDict(extra="allow")

    videos: list[Video] | SkipJsonSchema[None] = None


class TaskInfo(WireModel):
    """``{"external_task_id": ...}`` when the caller gave one, else ``{}``."""

    model_config = ConfigDict(extra="allow")

    external_task_id: str | SkipJsonSchema[None] = None


class WatermarkState(WireModel):
    enabled: bool = False


# The pattern is published, not enforced when parsing: the SDK still reads a server that sends
# "7.0" (as reelgate once did); this server always sends the canonical form.
Units = Annotated[
    str,
    Field(
        description='units charged, a canonical decimal string: "7", "3.5"; "0" until succeeded',
        examples=["0", "3.5", "7"],
        json_schema_extra={"pattern": r"^(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"},
    ),
]


class CreatedTask(WireModel):
    """``data`` of the create response (contract §4)."""

    task_id: str = Field(description="numeric string, 18 digits")
    task_status: TaskStatus
    task_info: TaskInfo = Field(default_factory=TaskInfo)
    created_at: int = Field(description="Unix milliseconds")
    updated_at: int = Field(description="Unix milliseconds")


class CallbackBody(WireModel):
    """The flat callback payload of contract §7, not enveloped."""

    task_id: str = Field(description="numeric string, 18 digits")
    task_status: TaskStatus
    task_status_msg: str = Field("", description="why the task failed; empty otherwise")
    task_info: TaskInfo = Field(default_factory=TaskInfo)
    task_result: TaskResult = Field(default_factory=TaskResult)
    final_unit_deduction: Units = "0"
    created_at: int = Field(description="Unix milliseconds")
    updated_at: int = Field(description="Unix milliseconds")


class TaskData(CallbackBody):
    """One task as queries return it (contract §5); ``task_progress``, ``model_name`` and
    ``seed`` are extensions. Unknown fields from other servers are kept when parsing."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    watermark_info: WatermarkState = Field(default_factory=WatermarkState)
    task_progress: int = Field(0, ge=0, le=100, description="extension: 0..100")
    model_name: str | SkipJsonSchema[None] = Field(
        None, description="extension: the served model id"
    )
    seed: int | SkipJsonSchema[None] = Field(
        None, description="extension: the seed the engine used, once succeeded"
    )


CALLBACK_FIELDS = tuple(CallbackBody.model_fields)


def video_id(task_id: str, index: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"reelgate:{task_id}:{index}"))


def wire_videos(rec: TaskRecord, sign: Signer) -> list[Video] | None:
    """Videos with signed URLs; None when a blob has been swept (no broken links)."""
    videos = []
    for v in rec.result.get("videos", []):
        url = sign(v["key"])
        if url is None:
            return None
        watermark_key, thumbnail_key = v.get("watermark_key"), v.get("thumbnail_key")
        videos.append(
            Video(
                id=v["id"],
                url=url,
                watermark_url=(sign(watermark_key) or "") if watermark_key else "",
                duration=str(v["duration"]),
                thumbnail_url=sign(thumbnail_key) if thumbnail_key else None,
            )
        )
    return videos


def charged_units(rec: TaskRecord) -> str:
    """``final_unit_deduction``: canonical, whatever form the store kept (``"7.0"`` -> ``"7"``);
    ``"0"`` until the task succeeded (failed tasks are free)."""
    if rec.status is not TaskStatus.SUCCEED:
        return "0"
    return format_units(Decimal(rec.units))


def created_task(rec: TaskRecord) -> CreatedTask:
    """The create response's ``data``."""
    return CreatedTask(
        task_id=rec.task_id,
        task_status=rec.status,
        task_info=TaskInfo(external_task_id=rec.external_task_id or None),
        created_at=rec.created_at,
        updated_at=rec.updated_at,
    )


def task_data(rec: TaskRecord, sign: Signer) -> TaskData:
    """The contract's task object (``.wire()`` for its JSON)."""
    result = TaskResult()
    if rec.status is TaskStatus.SUCCEED:
        result = TaskResult(videos=wire_videos(rec, sign))
    seed = rec.result.get("seed")
    return TaskData(
        task_id=rec.task_id,
        task_status=rec.status,
        task_status_msg=rec.status_msg,
        task_info=TaskInfo(external_task_id=rec.external_task_id or None),
        task_result=result,
        watermark_info=WatermarkState(enabled=rec.watermark),
        final_unit_deduction=charged_units(rec),
        created_at=rec.created_at,
        updated_at=rec.updated_at,
        task_progress=100 if rec.status is TaskStatus.SUCCEED else rec.progress,
        model_name=rec.model_name,
        seed=seed if isinstance(seed, int) else None,
    )


def callback_body(rec: TaskRecord, sign: Signer) -> dict[str, Any]:
    """The flat callback payload of contract §7, as a JSON-ready dict."""
    data = task_data(rec, sign)
    return CallbackBody(**{name: getattr(data, name) for name in CALLBACK_FIELDS}).wire()


def no_urls(key: str) -> str | None:
    """Signer for states that have no blobs yet."""
    return None
