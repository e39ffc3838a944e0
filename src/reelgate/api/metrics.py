"""``GET /metrics`` (Prometheus text format) and the middleware that counts HTTP requests.

Requests are labelled by route template (``/v1/videos/text2video/{task_id}``), never by raw path,
so a client cannot grow the series without bound; a path no route matches counts as
``unmatched``. Task gauges are read from the store at scrape time, so they are the same on every
replica and need no process to keep them up to date.
"""

from __future__ import annotations

import os
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelgate.metrics import HTTP_LATENCY, HTTP_REQUESTS
from reelgate.store.stats import TaskStats

from .service import Services

UNMATCHED = "unmatched"


class MetricsMiddleware:
    """Counts each HTTP request and times it until its response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes is answered 500 further out

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                HTTP_LATENCY.labels(route_of(scope), scope["method"]).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            HTTP_REQUESTS.labels(route_of(scope), scope["method"], str(status)).inc()


def route_of(scope: Scope) -> str:
    """The template of the route that answered (set in the scope by the router)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class StoreCollector(Collector):
    """Task gauges from one reading of the store."""

    def __init__(self, stats: TaskStats, now_ms: int) -> None:
        self.stats = stats
        self.now_ms = now_ms

    def collect(self) -> list[GaugeMetricFamily]:
        tasks = GaugeMetricFamily(
            "reelgate_tasks", "tasks in the store by status and model", labels=["status", "model"]
        )
        waiting = 0
        for (status, model), count in sorted(self.stats.by_status_model.items()):
            tasks.add_metric([status, model], count)
            if status == "submitted":
                waiting += count
        depth = GaugeMetricFamily("reelgate_queue_depth", "tasks submitted and not yet claimed")
        depth.add_metric([], waiting)
        oldest = self.stats.oldest_submitted_at
        age = GaugeMetricFamily(
            "reelgate_queue_oldest_age_seconds",
            "age of the oldest task still waiting to be claimed (0: none waiting)",
        )
        age.add_metric([], max(0.0, (self.now_ms - oldest) / 1000) if oldest is not None else 0.0)
        return [tasks, depth, age]


def process_registry() -> CollectorRegistry:
    """This process's metrics, or every API process's under PROMETHEUS_MULTIPROC_DIR."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


metrics_router = APIRouter()


@metrics_router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    svc: Services = request.app.state.services
    store_registry = CollectorRegistry(auto_describe=False)
    store_registry.register(StoreCollector(await svc.store.task_stats(), svc.store.clock()))
    body = generate_latest(process_registry()) + generate_latest(store_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
