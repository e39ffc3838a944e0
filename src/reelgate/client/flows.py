"""What the SDK does, written once as generators that yield I/O steps (sans-I/O).

``Client`` and ``AsyncClient`` differ only in how they perform a step; retries, error mapping,
waiting and downloading live here. A flow yields a step and is sent its outcome:

=====================  ====================================================================
step                   outcome
=====================  ====================================================================
``Send``               ``httpx.Response`` (body read), or the ``httpx`` exception raised
``Fetch``              ``httpx.Response``; on 2xx the body was streamed to ``dest``
``Sleep``              None
``Notify``             None, once ``callback(task)`` has run (and been awaited if async)
=====================  ====================================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from . import endpoints
from .endpoints import Call, parsed
from .envelope import read_data
from .errors import (
    ClientError,
    NotFoundError,
    PermissionDeniedError,
    TaskFailedError,
    TransportError,
    WaitTimeoutError,
)
from .retry import Outcome, Retry, may_have_been_processed

if TYPE_CHECKING:
    from .task import BaseTask

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    method: str
    url: str  # relative to the base URL
    params: Mapping[str, int] | None = None
    json: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Fetch:
    url: str  # absolute, signed; fetched without credentials
    dest: Path


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Notify:
    callback: Callable[[Any], object]
    task: BaseTask


Step = Send | Fetch | Sleep | Notify
Flow = Generator[Step, Any, T]


def _retrying(step: Send | Fetch, retry: Retry) -> Flow[tuple[Outcome, bool]]:
    """Perform ``step`` until it needs no retry: the last outcome, and whether an earlier
    attempt may have been processed by the server."""
    attempt, maybe_processed = 0, False
    while True:
        outcome: Outcome = yield step
        delay = retry.delay(attempt, outcome)
        if delay is None:
            return outcome, maybe_processed
        maybe_processed = maybe_processed or may_have_been_processed(outcome)
        yield Sleep(delay)
        attempt += 1


def _response(outcome: Outcome, what: str) -> httpx.Response:
    if isinstance(outcome, Exception):
        reason = str(outcome) or type(outcome).__name__
        raise TransportError(f"{what}: {reason}") from outcome
    return outcome


def request(call: Call[T], retry: Retry) -> Flow[T]:
    """One API call with retries; its parsed ``data`` or the typed error."""
    step = Send(call.method, call.path, call.params, call.json)
    outcome, maybe_processed = yield from _retrying(step, retry)
    response = _response(outcome, f"{call.method} {call.path}")
    try:
        return parsed(call, read_data(response))
    except ClientError:
        # e.g. a create whose first attempt timed out but was stored, refused as a duplicate
        # external_task_id on retry: the task the first attempt created is the answer.
        if maybe_processed and call.recover is not None:
            try:
                return (yield from request(call.recover, retry))
            except NotFoundError:
                pass
        raise


def refresh(task: BaseTask, retry: Retry) -> Flow[None]:
    task._update((yield from request(endpoints.get(task.id), retry)))


def cancel(task: BaseTask, retry: Retry) -> Flow[None]:
    task._update((yield from request(endpoints.cancel(task.id), retry)))


def wait(
    task: BaseTask,
    timeout: float | None,
    poll_interval: float,
    on_progress: Callable[[Any], object] | None,
    retry: Retry,
) -> Flow[None]:
    if poll_interval <= 0:
        raise ValueError("poll_interval must be positive")
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = (task.status, task.progress)
    while not task.finished:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise WaitTimeoutError(
                f"task {task.id} is still {task.status} ({task.progress}%) after {timeout:g} s;"
                " it keeps running on the server",
                task=task,
            )
        yield Sleep(poll_interval if remaining is None else min(poll_interval, remaining))
        yield from refresh(task, retry)
        if on_progress is not None and (task.status, task.progress) != seen:
            seen = (task.status, task.progress)
            yield Notify(on_progress, task)
    if task.failed:
        reason = task.status_msg or "no reason given"
        raise TaskFailedError(f"task {task.id} failed: {reason}", task=task)


def download_path(path_or_dir: str | Path | None, name: str) -> Path:
    """Where ``download`` writes: a file path as given, or ``name`` inside a directory."""
    if path_or_dir is None:
        return Path.cwd() / name
    path = Path(path_or_dir)
    if path.is_dir() or str(path_or_dir).endswith(("/", "\\")):
        path.mkdir(parents=True, exist_ok=True)
        return path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def download(
    task: BaseTask,
    path_or_dir: str | Path | None,
    watermarked: bool,
    index: int,
    retry: Retry,
) -> Flow[Path]:
    """Stream one video to disk; an expired or swept link is refreshed once from the task."""
    if task.failed:
        raise TaskFailedError(f"task {task.id} failed: {task.status_msg}", task=task)
    dest = download_path(path_or_dir, task.video_filename(index, watermarked))
    refreshed = False
    while True:
        url = task.video_url(index, watermarked)
        outcome, _ = yield from _retrying(Fetch(url, dest), retry)
        shown = str(httpx.URL(url).copy_with(query=None))  # no signature in messages
        response = _response(outcome, f"GET {shown}")
        if response.is_success:
            return dest
        try:
            read_data(response)  # raises the typed error of a non-2xx answer
        except (PermissionDeniedError, NotFoundError):
            if refreshed:
                raise
        yield from refresh(task, retry)
        refreshed = True
