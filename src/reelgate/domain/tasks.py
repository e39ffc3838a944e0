"""Task states, the stored task record, and its wire form (contract §5 and §7)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


# A signer turns a blob key into a URL, or None when the blob is gone (retention).
Signer = Callable[[str], "str | None"]


class Video(BaseModel):
    id: str
    url: str
    watermark_url: str = ""
    duration: str
    thumbnail_url: str | None = Field(None, description="extension: a JPEG of the first frame")


class TaskResult(BaseModel):
    videos: list[Video] = Field(default_factory=list)


class TaskData(BaseModel):
    """One task as queries return it (contract §5); ``task_progress``, ``seed`` are extensions."""

    model_config = ConfigDict(extra="allow")

    task_id: str
    task_status: TaskStatus
    task_status_msg: str = ""
    task_info: dict[str, str] = Field(default_factory=dict)
    task_result: TaskResult | dict[str, Any] = Field(default_factory=dict)
    watermark_info: dict[str, bool] = Field(default_factory=lambda: {"enabled": False})
    final_unit_deduction: str = "0"
    created_at: int
    updated_at: int
    task_progress: int = Field(0, ge=0, le=100, description="extension: 0..100")
    model_name: str | None = Field(None, description="extension: the served model id")


class CreatedTask(BaseModel):
    task_id: str
    task_status: TaskStatus
    task_info: dict[str, str] = Field(default_factory=dict)
    created_at: int
    updated_at: int


def video_id(task_id: str, index: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"reelgate:{task_id}:{index}"))


def wire_videos(rec: TaskRecord, sign: Signer) -> list[dict[str, Any]] | None:
    """Videos with signed URLs; None when a blob has been swept (no broken links)."""
    videos = []
    for v in rec.result.get("videos", []):
        url = sign(v["key"])
        if url is None:
            return None
        item: dict[str, Any] = {
            "id": v["id"],
            "url": url,
            "watermark_url": (sign(v["watermark_key"]) or "") if v.get("watermark_key") else "",
            "duration": str(v["duration"]),
        }
        if v.get("thumbnail_key"):
            item["thumbnail_url"] = sign(v["thumbnail_key"])
        videos.append(item)
    return videos


def task_data(rec: TaskRecord, sign: Signer) -> dict[str, Any]:
    """The contract's task object, as a JSON-ready dict."""
    info = {"external_task_id": rec.external_task_id} if rec.external_task_id else {}
    result: dict[str, Any] = {}
    if rec.status is TaskStatus.SUCCEED:
        videos = wire_videos(rec, sign)
        result = {"videos": videos} if videos is not None else {}
    data: dict[str, Any] = {
        "task_id": rec.task_id,
        "task_status": rec.status.value,
        "task_status_msg": rec.status_msg,
        "task_info": info,
        "task_result": result,
        "watermark_info": {"enabled": rec.watermark},
        "final_unit_deduction": rec.units if rec.status is TaskStatus.SUCCEED else "0",
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
        "task_progress": 100 if rec.status is TaskStatus.SUCCEED else rec.progress,
        "model_name": rec.model_name,
    }
    if "seed" in rec.result:
        data["seed"] = rec.result["seed"]
    return data


CALLBACK_FIELDS = (
    "task_id",
    "task_status",
    "task_status_msg",
    "task_info",
    "task_result",
    "final_unit_deduction",
    "created_at",
    "updated_at",
)


def callback_body(rec: TaskRecord, sign: Signer) -> dict[str, Any]:
    """The flat callback payload of contract §7."""
    data = task_data(rec, sign)
    return {key: data[key] for key in CALLBACK_FIELDS}


def no_urls(key: str) -> str | None:
    """Signer for states that have no blobs yet."""
    return None
