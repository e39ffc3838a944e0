"""The process's Prometheus metrics, declared once; the API, the worker and the dispatcher count.

With ``PROMETHEUS_MULTIPROC_DIR`` set (before the process starts, to an empty directory shared
by the API processes of one machine), prometheus-client keeps these values in files there and
``GET /metrics`` of any process adds up all of them. Task gauges (by status and model, queue
depth, oldest waiting task) are not here: they are read from the store at each scrape
(``reelgate.api.metrics``), so every replica reports the same truth.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "reelgate_http_requests",
    "HTTP requests answered, by route template, method and status code",
    ["route", "method", "code"],
)
HTTP_LATENCY = Histogram(
    "reelgate_http_request_duration_seconds",
    "time to answer an HTTP request (until the response starts), by route template and method",
    ["route", "method"],
)
TASK_RUN = Histogram(
    "reelgate_task_run_seconds",
    "time a worker spent on a task, claim to outcome, by model",
    ["model"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
CALLBACKS = Counter(
    "reelgate_callback_deliveries",
    "callback delivery attempts by outcome: delivered, retry (failed, sent again later), dead",
    ["outcome"],
)
STORAGE_ERRORS = Counter(
    "reelgate_storage_errors",
    "failed operations on the result storage (folder or S3), by operation",
    ["operation"],
)
