"""``client.text2video``: create, get, list and iterate tasks.

Both resources build the same :class:`~reelgate.client.endpoints.Call` objects and run the same
flows; they differ only in returning :class:`Task` or awaiting :class:`AsyncTask`.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Unpack

from reelgate.domain.tasks import TaskData

from . import endpoints, flows
from .endpoints import PAGE_NUM_MAX, CreateOptions
from .task import AsyncTask, Task

if TYPE_CHECKING:
    from .client import AsyncClient, Client

ITER_PAGE_SIZE = 100


def _unseen(batch: Iterable[TaskData], seen: set[str]) -> Iterator[TaskData]:
    """Tasks not yielded yet: a task created while paging shifts older ones to the next page."""
    for data in batch:
        if data.task_id not in seen:
            seen.add(data.task_id)
            yield data


class Text2Video:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _fetch(self, call: endpoints.Call[flows.T]) -> flows.T:
        return self._client._run(flows.request(call, self._client.retry))

    def create(self, prompt: str, **options: Unpack[CreateOptions]) -> Task:
        """Submit a task. Options left out take the server's defaults; a bad value raises
        :class:`InvalidParameterError` before anything is sent."""
        return Task(self._fetch(endpoints.create(prompt, options)), self._client)

    def get(self, task_id: str) -> Task:
        """One task by its ``task_id`` or by your ``external_task_id``."""
        return Task(self._fetch(endpoints.get(task_id)), self._client)

    def cancel(self, task_id: str) -> Task:
        """Cancel a task by ``task_id`` or ``external_task_id`` (reelgate extension); see
        :meth:`Task.cancel`."""
        return Task(self._fetch(endpoints.cancel(task_id)), self._client)

    def list(self, page: int = 1, page_size: int = 30) -> builtins.list[Task]:
        """One page of your tasks, newest first."""
        batch = self._fetch(endpoints.list_page(page, page_size))
        return [Task(data, self._client) for data in batch]

    def iter_all(self, page_size: int = ITER_PAGE_SIZE) -> Iterator[Task]:
        """Every task, newest first, page by page as you iterate."""
        seen: set[str] = set()
        for page in range(1, PAGE_NUM_MAX + 1):
            batch = self._fetch(endpoints.list_page(page, page_size))
            for data in _unseen(batch, seen):
                yield Task(data, self._client)
            if len(batch) < page_size:
                return


class AsyncText2Video:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _fetch(self, call: endpoints.Call[flows.T]) -> flows.T:
        return await self._client._run(flows.request(call, self._client.retry))

    async def create(self, prompt: str, **options: Unpack[CreateOptions]) -> AsyncTask:
        return AsyncTask(await self._fetch(endpoints.create(prompt, options)), self._client)

    async def get(self, task_id: str) -> AsyncTask:
        return AsyncTask(await self._fetch(endpoints.get(task_id)), self._client)

    async def cancel(self, task_id: str) -> AsyncTask:
        return AsyncTask(await self._fetch(endpoints.cancel(task_id)), self._client)

    async def list(self, page: int = 1, page_size: int = 30) -> builtins.list[AsyncTask]:
        batch = await self._fetch(endpoints.list_page(page, page_size))
        return [AsyncTask(data, self._client) for data in batch]

    async def iter_all(self, page_size: int = ITER_PAGE_SIZE) -> AsyncIterator[AsyncTask]:
        seen: set[str] = set()
        for page in range(1, PAGE_NUM_MAX + 1):
            batch = await self._fetch(endpoints.list_page(page, page_size))
            for data in _unseen(batch, seen):
                yield AsyncTask(data, self._client)
            if len(batch) < page_size:
                return
