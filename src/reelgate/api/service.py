"""What the routes call: one function per operation, no HTTP in here."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reelgate.domain.account import CostsReport, ResourcePack
from reelgate.domain.errors import InvalidParameterError, InvalidRequestError, NotFoundError
from reelgate.domain.models import Catalog, format_units
from reelgate.domain.netguard import check_callback_url
from reelgate.domain.profiles import PROFILES, Profile
from reelgate.domain.requests import parse_text2video, require_task_ident
from reelgate.domain.scenarios import SCENARIO_PARAM, link_ttl
from reelgate.domain.tasks import (
    CANCELLED_BY_CLIENT,
    Signer,
    TaskData,
    TaskRecord,
    TaskStatus,
    task_data,
)
from reelgate.settings import Settings, env_name
from reelgate.storage import Storage
from reelgate.store import NewTask, Store
from reelgate.store.accounts import TtlCache

from .emulator import Emulator
from .envelope import wire_json

RENDER_REUSE_S = 5.0  # at most this long is a finished task's rendered JSON reused
RENDER_REUSE_SHARE = 0.1  # and at most this share of its links' lifetime
RENDERS_KEPT = 4096  # finished tasks kept rendered (about 1 KB each)


@dataclass
class Services:
    settings: Settings
    store: Store
    catalog: Catalog
    storage: Storage
    health: Callable[[], Mapping[str, str]] | None = None
    profile: Profile = PROFILES["kling"]
    emulator: Emulator | None = None  # scenarios and /_sandbox, when the sandbox serves
    monotonic: Callable[[], float] = time.monotonic  # how long rendered tasks are reused
    _renders: TtlCache[tuple[str, str], bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        reuse_s = min(RENDER_REUSE_S, self.settings.url_ttl_s * RENDER_REUSE_SHARE)
        self._renders = TtlCache(self.monotonic, reuse_s, RENDERS_KEPT)

    def model_health(self) -> Mapping[str, str]:
        return self.health() if self.health is not None else {}

    def signer(self, base_url: str, ttl_s: int | None = None) -> Signer:
        """Links for a response to a request that came through ``base_url``."""
        base = self.settings.links_base(base_url)
        return lambda key: self.storage.sign(key, base, ttl_s)

    def task_signer(self, task: TaskRecord, base_url: str) -> Signer:
        """Links for ``task``: short-lived when its sandbox scenario says so."""
        return self.signer(base_url, link_ttl(task.params))

    def task_json(self, task: TaskRecord, base_url: str) -> bytes:
        """The task object's JSON, for a request that came through ``base_url``.

        A finished task never changes again (the store's compare-and-set), so its JSON, links
        and all, is reused for a few seconds (RENDER_REUSE_S): signing its links and building
        its model was 60 % of a task list's CPU. A reused link was signed at most that long
        ago, so it expires that much sooner, and a blob the retention sweep removed meanwhile
        keeps its link that long (it answers 404, as a link followed after the sweep does).
        Whether the task exists and is the caller's is asked of the store on every request;
        tasks whose scenario shortens their links are rendered every time.
        """
        if not task.status.finished or link_ttl(task.params) is not None:
            return wire_json(task_data(task, self.task_signer(task, base_url)))
        key = (task.task_id, base_url)
        body = self._renders.get(key)
        if body is None:
            body = wire_json(task_data(task, self.signer(base_url)))
            self._renders.put(key, body)
        return body

    async def create_text2video(
        self,
        account_id: int,
        payload: Any,
        base_url: str | None = None,
        scenario: str | None = None,
    ) -> TaskRecord:
        """Create a task; ``base_url`` (the URL the request came through) is kept for the
        links in its callbacks; ``scenario`` is the X-Reelgate-Scenario header."""
        asked = parse_text2video(payload)
        self.profile.check(asked)
        spec = self.catalog.resolve(asked.model_name)
        req = spec.accept(asked)  # what the model cannot honour is refused, the rest ignored
        if req.callback_url:
            await check_callback_url(
                req.callback_url,
                self.settings.callback_allow_private,
                allow_setting=env_name("callback_allow_private"),
            )
        params = req.model_dump(mode="json", exclude_none=True)
        params["model_name"] = spec.id
        submitted_s, _ = spec.phases(req, realistic=self.settings.realistic)
        choice = None
        if self.emulator is not None:
            choice = await self.emulator.choose(self.store, account_id, spec, req, scenario)
            if choice is not None and choice.effects is not None:
                params[SCENARIO_PARAM] = choice.effects.model_dump(mode="json")
        task = await self.store.create_task(
            NewTask(
                account_id=account_id,
                model_name=spec.id,
                params=params,
                units=spec.units_for(req),
                external_task_id=req.external_task_id,
                callback_url=req.callback_url,
                watermark=req.watermark,
                base_url=base_url,
                submitted_s=submitted_s,
            ),
            default_concurrency=self.settings.max_concurrent_tasks,
        )
        if self.emulator is not None:
            await self.emulator.created(
                self.store, account_id, choice, task.task_id, task.external_task_id
            )
        return task

    async def task_view(self, account_id: int, ident: str, base_url: str) -> bytes:
        """The caller's task as JSON (:meth:`task_json`); one rendered a moment ago costs the
        store only the check that it is the caller's."""
        require_task_ident(ident)  # never send the store an id no task can have
        body = self._renders.get((ident, base_url))  # ident a task_id, the task finished
        if body is not None and await self.store.has_task(account_id, ident):
            return body
        task = await self.store.get_task(account_id, ident)
        if task is None:
            raise NotFoundError(f"task {ident!r} not found")
        return self.task_json(task, base_url)

    async def cancel_text2video(self, account_id: int, ident: str, base_url: str) -> TaskData:
        """Cancel the caller's task: a ``submitted`` one ends ``failed`` at once, a running one
        when its worker sees the request (within a heartbeat); the task as it is now.

        Cancelling a task already cancelled (or being cancelled) answers the task again; a task
        that finished otherwise is 400/1200.
        """
        require_task_ident(ident)
        await self.store.fail_abandoned()  # an API-only server has no worker sweeping them
        task = await self.store.request_cancel(account_id, ident, CANCELLED_BY_CLIENT)
        if task is None:
            raise NotFoundError(f"task {ident!r} not found")
        cancelled = task.status is TaskStatus.FAILED and task.cancel_reason == CANCELLED_BY_CLIENT
        if task.status.finished and not cancelled:
            raise InvalidRequestError(
                f"task {task.task_id} cannot be cancelled: it already finished as"
                f" {task.status.value}; only submitted or processing tasks can be cancelled"
            )
        return task_data(task, self.signer(base_url))

    async def list_view(
        self, account_id: int, page: int, page_size: int, base_url: str
    ) -> list[bytes]:
        """A page of the caller's tasks as JSON (:meth:`task_json`), newest first. The page's
        ids first: when every one of its tasks was rendered a moment ago, that is all the store
        is asked (a page of finished tasks, polled); otherwise the page is read whole."""
        ids = await self.store.list_task_ids(account_id, page, page_size)
        bodies = [self._renders.get((task_id, base_url)) for task_id in ids]
        if all(body is not None for body in bodies):
            return [body for body in bodies if body is not None]
        tasks = await self.store.list_tasks(account_id, page, page_size)
        return [self.task_json(task, base_url) for task in tasks]

    async def costs_view(self, account_id: int, start_ms: int, end_ms: int) -> CostsReport:
        """Kling's double-wrapped resource pack report; one pack per account."""
        if start_ms > end_ms:
            raise InvalidParameterError("start_time: must not be after end_time")
        account = await self.store.get_account(account_id)
        if account is None:
            raise NotFoundError("account not found")
        charged = await self.store.units_charged(account_id)
        quota = account.unit_quota
        remaining = None if quota is None else max(quota - charged, Decimal(0))
        pack = ResourcePack(
            resource_pack_name="reelgate units" if quota is not None else "reelgate unlimited",
            resource_pack_id=f"account-{account.id}",
            resource_pack_type="decreasing_total" if quota is not None else "unlimited",
            total_quantity=float(quota) if quota is not None else None,
            remaining_quantity=float(remaining) if remaining is not None else None,
            used_quantity=float(charged),
            purchase_time=account.created_at,
            effective_time=account.created_at,
            invalid_time=0,
            status="runOut" if remaining is not None and remaining <= 0 else "online",
        )
        return CostsReport(
            resource_pack_subscribe_infos=[pack] if account.created_at <= end_ms else [],
            units_charged=format_units(charged),
        )
