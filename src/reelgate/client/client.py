"""``Client`` and ``AsyncClient``: configuration in one base, I/O in two small drivers.

Everything the SDK decides (retries, errors, waiting, downloading) is a flow in
:mod:`reelgate.client.flows`; a client only performs the steps a flow yields, with ``httpx``.
The transport is injectable as in httpx, so the same client runs against a real server, an
``httpx.MockTransport`` or an in-process ASGI app.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar, cast

import httpx

from .config import resolve_config
from .flows import Fetch, Flow, Notify, Send, Sleep, Step
from .resources import AsyncText2Video, Text2Video
from .retry import Retry

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
CHUNK_SIZE = 256 * 1024


@functools.cache
def _user_agent() -> str:
    try:
        return f"reelgate-python/{version('reelgate')}"
    except PackageNotFoundError:
        return "reelgate-python"


def _part_path(dest: Path) -> Path:
    """Downloads land here first, so ``dest`` never holds half a file."""
    return dest.with_name(dest.name + ".part")


class BaseClient:
    """What both clients share: base URL, credentials, timeout and retry policy."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
    ) -> None:
        config = resolve_config(
            base_url, api_key=api_key, access_key=access_key, secret_key=secret_key
        )
        self.base_url = config.base_url
        self.retry = retry if retry is not None else Retry()
        self._http_options: dict[str, Any] = {
            "base_url": config.base_url,
            "auth": config.auth,
            "timeout": timeout,
            "headers": {"User-Agent": _user_agent()},
            "follow_redirects": False,  # a redirected API call means a wrong base_url
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class Client(BaseClient):
    """Synchronous client. Use it as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key=api_key,
            access_key=access_key,
            secret_key=secret_key,
            timeout=timeout,
            retry=retry,
        )
        self._http = httpx.Client(transport=transport, **self._http_options)
        self.text2video = Text2Video(self)

    def _run(self, flow: Flow[T]) -> T:
        outcome: object = None
        try:
            while True:
                try:
                    step = flow.send(outcome)
                except StopIteration as done:
                    return cast(T, done.value)
                outcome = self._perform(step)
        finally:
            flow.close()

    def _perform(self, step: Step) -> object:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        if isinstance(step, Notify):
            step.callback(step.task)
            return None
        try:
            if isinstance(step, Send):
                return self._http.request(step.method, step.url, params=step.params, json=step.json)
            return self._fetch(step)
        except httpx.RequestError as exc:
            return exc

    def _fetch(self, step: Fetch) -> httpx.Response:
        # Signed links need no credentials, and may point at another host (a CDN).
        with self._http.stream("GET", step.url, auth=None, follow_redirects=True) as response:
            if not response.is_success:
                response.read()
                return response
            part = _part_path(step.dest)
            try:
                with part.open("wb") as file:
                    for chunk in response.iter_bytes(CHUNK_SIZE):
                        file.write(chunk)
                part.replace(step.dest)
            finally:
                part.unlink(missing_ok=True)
            return response

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(BaseClient):
    """Asynchronous client with the same surface; use ``async with`` or :meth:`aclose`."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key=api_key,
            access_key=access_key,
            secret_key=secret_key,
            timeout=timeout,
            retry=retry,
        )
        self._http = httpx.AsyncClient(transport=transport, **self._http_options)
        self.text2video = AsyncText2Video(self)

    async def _run(self, flow: Flow[T]) -> T:
        outcome: object = None
        try:
            while True:
                try:
                    step = flow.send(outcome)
                except StopIteration as done:
                    return cast(T, done.value)
                outcome = await self._perform(step)
        finally:
            flow.close()

    async def _perform(self, step: Step) -> object:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, Notify):
            result = step.callback(step.task)
            if inspect.isawaitable(result):
                await result
            return None
        try:
            if isinstance(step, Send):
                return await self._http.request(
                    step.method, step.url, params=step.params, json=step.json
                )
            return await self._fetch(step)
        except httpx.RequestError as exc:
            return exc

    async def _fetch(self, step: Fetch) -> httpx.Response:
        async with self._http.stream("GET", step.url, auth=None, follow_redirects=True) as response:
            if not response.is_success:
                await response.aread()
                return response
            part = _part_path(step.dest)
            # File writes go to a thread: the event loop never blocks on the disk.
            file = cast(IO[bytes], await asyncio.to_thread(part.open, "wb"))
            try:
                async for chunk in response.aiter_bytes(CHUNK_SIZE):
                    await asyncio.to_thread(file.write, chunk)
                await asyncio.to_thread(file.close)
                await asyncio.to_thread(part.replace, step.dest)
            finally:
                file.close()
                await asyncio.to_thread(part.unlink, missing_ok=True)
            return response

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
