"""Engines turn a validated request into video files. See :mod:`reelgate.engines.base`."""

from .base import (
    Cancelled,
    Engine,
    EngineError,
    Job,
    Output,
    Progress,
    TaskCancelledError,
    VideoFile,
)

__all__ = [
    "Cancelled",
    "Engine",
    "EngineError",
    "Job",
    "Output",
    "Progress",
    "TaskCancelledError",
    "VideoFile",
]
