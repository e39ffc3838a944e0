"""Delivery of outbox events to callback URLs (contract §7).

The store writes one outbox row per task status change (a snapshot of the task), in the same
transaction as the change. The dispatcher polls the outbox, renders each due event's flat body
with ``callback_body`` and fresh signed links (``links``: base URL -> signer; the base is the
one the task was created through, or ``REELGATE_PUBLIC_URL``), POSTs it and records the outcome
with ``Store.mark_event``: ``delivered`` on 2xx; otherwise a retry with exponential backoff,
until ``callback_max_attempts``, then ``dead``.

Order per task: ``Store.due_events`` hands out only each task's oldest pending event, and the
dispatcher keeps at most one delivery per task in flight. A retried event therefore holds back
the later events of its own task, never those of another task. Delivery is at least once: an
attempt cut short (shutdown, crash) before its outcome is recorded is sent again.

On time: the dispatcher leases exactly the events it starts, in the pass that reads them. An
event it does not start (no free slot) is not leased and stays due for the next pass; one read
before its previous attempt was recorded fails the lease's compare-and-set and is dropped. (It
used to lease every event it read, so a skipped one sat idle for the whole lease, 40 s.)

The dispatcher never touches tasks: a slow or dead receiver cannot delay or fail one.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from reelgate.domain.errors import InvalidParameterError
from reelgate.domain.scenarios import link_ttl
from reelgate.domain.tasks import Signer, callback_body
from reelgate.metrics import CALLBACKS
from reelgate.settings import Settings, env_name
from reelgate.store import Store, TaskEvent

from .signing import secret_key, webhook_headers
from .targets import callback_target

if TYPE_CHECKING:  # httpx is imported by the first delivery: a server starts sooner without it
    import httpx

log = logging.getLogger("reelgate.callbacks")

USER_AGENT = "reelgate-callbacks/0.1"
MAX_BACKOFF_S = 600.0
# Floor of the loop's sleep, so a due time that is already past cannot make it spin.
_MIN_SLEEP_S = 0.01


def retry_delay_s(
    failures: int,
    base_s: float,
    *,
    cap_s: float = MAX_BACKOFF_S,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay after the ``failures``-th failed attempt: base, 2 x base, 4 x base... +-20 %, capped.

    The jitter spreads the retries of many events that failed together (a receiver outage)
    so they do not all hit the receiver again in the same instant.
    """
    exponent = min(max(failures - 1, 0), 60)  # 2**60 x base is past any cap; avoids overflow
    return float(min(cap_s, base_s * 2**exponent * (0.8 + 0.4 * rand())))


def webhook_id(event: TaskEvent) -> str:
    """Stable across retries of one event, distinct across events and across databases."""
    return f"evt_{event.task_id}_{event.id}"


def encode_body(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class _Failure:
    reason: str
    permanent: bool = False  # retrying cannot help (refused target, malformed URL)


# A base URL and a lifetime (None: the configured one) -> the signer of result links under it
# (storage's ``sign``).
Links = Callable[[str, int | None], Signer]


class CallbackDispatcher:
    """Runs beside the API (``create_app(settings, background=[dispatcher])``) or alone."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        links: Links,
        transport: httpx.AsyncBaseTransport | None = None,
        concurrency: int = 16,
        # Other processes' events are found by polling: this bounds their wait.
        poll_interval_s: float = 0.25,
        max_backoff_s: float = MAX_BACKOFF_S,
        stop_grace_s: float = 5.0,
    ) -> None:
        if settings.webhook_secret:
            secret_key(settings.webhook_secret)  # a malformed secret fails at startup, not later
        self._store = store
        self._settings = settings
        self._links = links
        self._transport = transport
        self._concurrency = max(1, concurrency)
        self._poll_s = poll_interval_s
        self._max_backoff_s = max_backoff_s
        self._stop_grace_s = stop_grace_s
        self._client: httpx.AsyncClient | None = None
        self._inflight: dict[str, asyncio.Task[None]] = {}  # task_id -> its delivery
        self._retry_heap: list[int] = []  # ms times of retries this process scheduled
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._loop_task is None:
            # Events written in this process wake the loop at once; others' are polled for.
            self._unlisten = self._store.listen_for_events(self._wake.set)
            self._loop_task = asyncio.create_task(self._run(), name="callback dispatcher")

    async def stop(self) -> None:
        """Stop taking events; give running attempts ``stop_grace_s`` to finish, then cut them.

        A cut attempt is not recorded and its lease is released: it is sent again soon.
        """
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        running = list(self._inflight.values())
        if running:
            _, cut = await asyncio.wait(running, timeout=self._stop_grace_s)
            for task in cut:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def run_once(self) -> int:
        """Attempt every event due now (each task's oldest), concurrently; return the count."""
        started = self._start_deliveries(await self._fetch_due())
        await asyncio.gather(*started)
        return len(started)

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                self._start_deliveries(await self._fetch_due())
                delay = await self._idle_delay()
            except Exception:
                # The store may be briefly unreachable; losing the dispatcher would silently
                # stop all callbacks, so log and try again after the poll interval.
                log.exception("callback dispatcher: reading the outbox failed")
                delay = self._poll_s
            # Woken early when a delivery ends (its slot is free and its task's next event
            # may be due now) and when this process writes an event.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _fetch_due(self) -> list[TaskEvent]:
        """Read and lease the events to start now: as many as there are free slots.

        Only this loop starts deliveries, and deliveries only end meanwhile, so every event
        returned here gets a slot and a task of its own: nothing is leased and then skipped.
        """
        free = self._concurrency - len(self._inflight)
        if free <= 0:
            return []
        # A delivery that ends while this runs may be read in its stale, still pending form;
        # the lease re-checks each row (pending and due), so such an event is not returned.
        return await self._store.due_events(
            free,
            lease_s=self._settings.callback_timeout_s + 30,
            skip_tasks=list(self._inflight),
        )

    def _start_deliveries(self, events: Sequence[TaskEvent]) -> list[asyncio.Task[None]]:
        started: list[asyncio.Task[None]] = []
        for event in events:
            task = asyncio.create_task(self._deliver(event), name=f"callback {event.id}")
            self._inflight[event.task_id] = task
            task.add_done_callback(partial(self._delivery_done, event.task_id))
            started.append(task)
        return started

    def _delivery_done(self, task_id: str, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(task_id, None)
        self._wake.set()

    async def _idle_delay(self) -> float:
        """Seconds until something may be due: the store's next time, our retries, or a poll.

        Other processes write events, so the poll interval bounds the wait. A next time that is
        already past belongs to an event in flight or queued behind its task's retry; the end
        of a delivery wakes the loop anyway, so it does not shorten the sleep.
        """
        now = self._store.clock()
        delay = self._poll_s
        due = await self._store.next_event_due_at()
        if due is not None and due > now:
            delay = min(delay, (due - now) / 1000)
        while self._retry_heap and self._retry_heap[0] <= now:
            heapq.heappop(self._retry_heap)
        if self._retry_heap:
            delay = min(delay, (self._retry_heap[0] - now) / 1000)
        return max(delay, _MIN_SLEEP_S)

    # -- one attempt -------------------------------------------------------------------------

    async def _deliver(self, event: TaskEvent) -> None:
        try:
            failure = await self._attempt(event)
        except asyncio.CancelledError:
            # Cut by stop(): hand the lease back so the event is sent again soon, uncounted.
            with contextlib.suppress(Exception):
                await self._store.release_event(event.id)
            raise
        attempt = event.attempts + 1
        try:
            if failure is None:
                await self._store.mark_event(event.id, "delivered")
                CALLBACKS.labels("delivered").inc()
                log.debug("callback %s delivered (attempt %d)", webhook_id(event), attempt)
            elif failure.permanent or attempt >= self._settings.callback_max_attempts:
                await self._store.mark_event(event.id, "dead", error=failure.reason)
                CALLBACKS.labels("dead").inc()
                log.warning(
                    "callback %s to %s gave up after %d attempt(s): %s",
                    webhook_id(event),
                    event.callback_url,
                    attempt,
                    failure.reason,
                )
            else:
                delay = retry_delay_s(
                    attempt, self._settings.callback_backoff_s, cap_s=self._max_backoff_s
                )
                retry_at = self._store.clock() + int(delay * 1000)
                await self._store.mark_event(
                    event.id, "pending", next_attempt_at=retry_at, error=failure.reason
                )
                heapq.heappush(self._retry_heap, retry_at)
                CALLBACKS.labels("retry").inc()
                log.info(
                    "callback %s failed (attempt %d): %s; retrying in %.1f s",
                    webhook_id(event),
                    attempt,
                    failure.reason,
                    delay,
                )
        except Exception:
            # Unrecorded, the event stays pending and is sent again: at least once holds.
            log.exception("callback %s: recording the outcome failed", webhook_id(event))

    async def _attempt(self, event: TaskEvent) -> _Failure | None:
        import httpx

        timeout = self._settings.callback_timeout_s
        try:
            body = encode_body(self.render(event))
        except Exception as exc:
            # Costs one attempt (and is retried) instead of leaving the event leased.
            log.exception("callback %s: rendering the body failed", webhook_id(event))
            return _Failure(f"rendering the body failed: {_describe(exc)}")
        headers = {"Content-Type": "application/json"}
        if self._settings.webhook_secret:
            headers.update(webhook_headers(self._settings.webhook_secret, webhook_id(event), body))
        try:
            # One deadline for the whole attempt: httpx's timeouts apply per read, so a
            # receiver trickling bytes could otherwise hold a slot for ever.
            async with asyncio.timeout(timeout):
                target = await callback_target(
                    event.callback_url,
                    self._settings.callback_allow_private,
                    allow_setting=env_name("callback_allow_private"),
                )
                async with self._http().stream(
                    "POST",
                    target.url,
                    content=body,
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                ) as response:
                    # The body is never read: a receiver cannot make us buffer megabytes.
                    status = response.status_code
        except InvalidParameterError as exc:
            return _Failure(exc.message, permanent=True)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return _Failure(f"invalid callback URL: {exc}", permanent=True)
        except (TimeoutError, httpx.TimeoutException):
            return _Failure(f"timed out after {timeout:g} s")
        except (httpx.HTTPError, OSError) as exc:
            return _Failure(_describe(exc))
        except Exception as exc:
            # A bug or an odd transport must cost one attempt, not leave the event pending
            # with no retry time (it would be picked up again at once, in a tight loop).
            log.exception("callback %s: unexpected error", webhook_id(event))
            return _Failure(_describe(exc))
        if 200 <= status < 300:
            return None
        return _Failure(f"HTTP {status}")

    def render(self, event: TaskEvent) -> dict[str, object]:
        """The flat body of ``event``, with links signed now (fresh for every attempt)."""
        record = event.record()
        if record is None:
            return event.payload  # a row written before snapshots: its body as it was
        # a sandbox scenario's short-lived links hold in callbacks as in query responses
        sign = self._links(self._settings.links_base(event.base_url), link_ttl(record.params))
        return callback_body(record, sign)

    def _http(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=self._settings.callback_timeout_s,
                headers={"User-Agent": USER_AGENT},
                # A redirect could lead to an address the guard refused.
                follow_redirects=False,
                # Targets are pinned to checked addresses; a proxy from the environment
                # would resolve names again behind our back.
                trust_env=False,
                # No keep-alive: pooled connections are keyed by address, so a TLS connection
                # opened for one host name could carry a request for another on the same IP.
                limits=httpx.Limits(max_connections=self._concurrency, max_keepalive_connections=0),
            )
        return self._client


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
