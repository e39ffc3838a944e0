"""Task handles: the contract's task object plus ``refresh``, ``wait`` and ``download``.

A handle holds the latest snapshot the server sent; ``refresh`` and ``wait`` update it in place
(so ``task.wait(); task.download()`` works) and return the handle itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reelgate.domain.tasks import TaskData, TaskStatus, Video

from . import flows
from .errors import NotFoundError, TaskNotReadyError

if TYPE_CHECKING:
    from .client import AsyncClient, Client

DEFAULT_WAIT_TIMEOUT = 1800.0  # seconds; real Kling tasks take minutes
DEFAULT_POLL_INTERVAL = 2.0


class BaseTask:
    """The fields of one task (contract section 5); shared by :class:`Task` and
    :class:`AsyncTask`."""

    def __init__(self, data: TaskData) -> None:
        self._data = data

    def _update(self, data: TaskData) -> None:
        self._data = data

    @property
    def data(self) -> TaskData:
        """The last snapshot as the wire model (extension fields included)."""
        return self._data

    @property
    def id(self) -> str:
        return self._data.task_id

    @property
    def status(self) -> TaskStatus:
        return self._data.task_status

    @property
    def status_msg(self) -> str:
        """Why the task failed; empty otherwise."""
        return self._data.task_status_msg

    @property
    def progress(self) -> int:
        """0..100 (reelgate's ``task_progress`` extension; 100 once succeeded on any server)."""
        return 100 if self.succeeded else self._data.task_progress

    @property
    def external_task_id(self) -> str | None:
        return self._data.task_info.external_task_id

    @property
    def model_name(self) -> str | None:
        return self._data.model_name

    @property
    def units(self) -> str:
        """``final_unit_deduction``: units charged, a decimal string (``"0"`` until succeeded)."""
        return self._data.final_unit_deduction

    @property
    def watermark(self) -> bool:
        return self._data.watermark_info.enabled

    @property
    def created_at(self) -> int:
        """Unix milliseconds."""
        return self._data.created_at

    @property
    def updated_at(self) -> int:
        return self._data.updated_at

    @property
    def videos(self) -> list[Video]:
        return self._data.task_result.videos or []

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def succeeded(self) -> bool:
        return self.status is TaskStatus.SUCCEED

    @property
    def failed(self) -> bool:
        return self.status is TaskStatus.FAILED

    def to_dict(self) -> dict[str, Any]:
        """The task as the server sent it, JSON-ready."""
        return self._data.wire()

    def video_url(self, index: int = 0, watermarked: bool = False) -> str:
        if not self.succeeded:
            raise TaskNotReadyError(
                f"task {self.id} is {self.status}; its video is not ready", task=self
            )
        videos = self.videos
        if not videos:
            raise NotFoundError(f"task {self.id} has no video left (outputs expire)")
        if not 0 <= index < len(videos):
            raise IndexError(f"task {self.id} has {len(videos)} video(s); no index {index}")
        video = videos[index]
        url = video.watermark_url if watermarked else video.url
        if not url:
            raise NotFoundError(
                f"task {self.id} has no watermarked copy (create it with watermark=True)"
            )
        return url

    def video_filename(self, index: int = 0, watermarked: bool = False) -> str:
        suffix = (f"-{index}" if index else "") + ("-watermarked" if watermarked else "")
        return f"{self.id}{suffix}.mp4"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.status} {self.progress}%>"


class Task(BaseTask):
    def __init__(self, data: TaskData, client: Client) -> None:
        super().__init__(data)
        self._client = client

    def refresh(self) -> Task:
        self._client._run(flows.refresh(self, self._client.retry))
        return self

    def cancel(self) -> Task:
        """Ask the server to cancel this task (reelgate extension); the handle is updated.

        A queued task is ``failed`` at once; a running one stays ``processing`` until its
        worker stops it (about a second; ``wait()`` then raises :class:`TaskFailedError`).
        Raises :class:`InvalidRequestError` when the task already finished otherwise."""
        self._client._run(flows.cancel(self, self._client.retry))
        return self

    def wait(
        self,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_progress: Callable[[Task], object] | None = None,
    ) -> Task:
        """Poll until the task finishes; ``on_progress(task)`` runs whenever status or progress
        changes. Raises :class:`TaskFailedError` or :class:`WaitTimeoutError` (``timeout=None``
        waits forever)."""
        flow = flows.wait(self, timeout, poll_interval, on_progress, self._client.retry)
        self._client._run(flow)
        return self

    def download(
        self, path_or_dir: str | Path | None = None, *, watermarked: bool = False, index: int = 0
    ) -> Path:
        """Stream the video to ``path_or_dir`` (a file, or a directory that gets
        ``TASK_ID.mp4``; default: the working directory) and return the file's path."""
        flow = flows.download(self, path_or_dir, watermarked, index, self._client.retry)
        return self._client._run(flow)


class AsyncTask(BaseTask):
    def __init__(self, data: TaskData, client: AsyncClient) -> None:
        super().__init__(data)
        self._client = client

    async def refresh(self) -> AsyncTask:
        await self._client._run(flows.refresh(self, self._client.retry))
        return self

    async def cancel(self) -> AsyncTask:
        """As :meth:`Task.cancel`."""
        await self._client._run(flows.cancel(self, self._client.retry))
        return self

    async def wait(
        self,
        # Same surface as Task.wait; the deadline is checked between polls, never mid-request.
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,  # noqa: ASYNC109
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_progress: Callable[[AsyncTask], Awaitable[object] | object] | None = None,
    ) -> AsyncTask:
        """As :meth:`Task.wait`; ``on_progress`` may be a plain or an async function."""
        flow = flows.wait(self, timeout, poll_interval, on_progress, self._client.retry)
        await self._client._run(flow)
        return self

    async def download(
        self, path_or_dir: str | Path | None = None, *, watermarked: bool = False, index: int = 0
    ) -> Path:
        flow = flows.download(self, path_or_dir, watermarked, index, self._client.retry)
        return await self._client._run(flow)
