"""The event loop `reelgate` runs on, and `serve --api-workers N`: N API processes on one port.

Every server and worker loop is Python's own asyncio loop unless REELGATE_EVENT_LOOP=uvloop;
uvicorn parses HTTP with httptools. Measured with bench/api.py (64 connections, 2 cores),
uvloop served about as many requests but let a few connections wait: p99 of a GET 0.8 s
against 40 ms on asyncio's loop, whose ready queue serves connections in turn.

Several API processes share one listening socket, bound here before they start, and the kernel
spreads connections over them, so GET throughput grows with the cores.

The in-process worker does not run in them: N processes would each render next to an API (a
render holds the GIL of the process it runs in, which is what starves an API), and the
sandbox's and diffusers' engines would be loaded N times. `--api-workers` above 1 therefore
needs `--no-worker`, and workers run as `reelgate worker` processes beside the API ones
(each API process still runs the callback dispatcher and retention sweep: both are safe to run
in several processes, see callbacks/ and worker/maintenance.py).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from reelgate.settings import Settings, env_name

from .runtime import StartupError

log = logging.getLogger("reelgate")
T = TypeVar("T")
CHILD_GRACE_S = 20.0  # beyond the shutdown grace, before a stuck API process is killed


def loop_factory(event_loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of REELGATE_EVENT_LOOP's loop; None for asyncio's default."""
    if event_loop != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        raise StartupError(
            f"{env_name('event_loop')}=uvloop: uvloop is not installed (pip install uvloop)"
        ) from None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], settings: Settings) -> T:
    """``asyncio.run`` on the event loop ``settings`` name."""
    try:
        factory = loop_factory(settings.event_loop)
    except StartupError:
        main.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn settings of every API process."""
    return {
        "host": settings.host,
        "port": settings.port,
        "http": "httptools" if _has("httptools") else "h11",
        "log_level": "info",
        "log_config": None,  # its loggers propagate to ours (configure_logging)
        # Forwarded headers are read by reelgate's own middleware (REELGATE_FORWARDED_ALLOW_IPS)
        "proxy_headers": False,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_s) + 15,
    }


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def api_workers_problem(settings: Settings) -> str | None:
    """Why ``settings`` cannot run several API processes; None when they can (or need not)."""
    if settings.api_workers < 1:
        return f"{env_name('api_workers')} (--api-workers) must be at least 1"
    if settings.api_workers > 1 and settings.run_worker:
        return (
            f"--api-workers {settings.api_workers} runs the API alone: add --no-worker"
            f" ({env_name('run_worker')}=false) and run `reelgate worker` beside it; a worker"
            " in each API process would render next to the API it slows down, once per process"
        )
    return None


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port) for uvicorn to serve on.

    Its protocol is named (IPPROTO_TCP): asyncio turns Nagle's algorithm off (TCP_NODELAY)
    only on connections of such a socket, and with it on, the body a response writes after
    its headers waited for the client's delayed ACK: 44 ms per request, whatever the load.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def serve_api_processes(settings: Settings) -> int:
    """Run ``settings.api_workers`` API processes on one port until SIGINT/SIGTERM, or until
    one of them dies (then all stop: a half-served port must not limp on). Exit status."""
    from .runtime import configure_logging, prepare_store

    configure_logging(settings)
    # migrations and the first account, once, before any process
    run(prepare_store(settings), settings)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # /metrics of any process then sums them all (reelgate.metrics); set before they start
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="reelgate-metrics-")
    sock = bound_socket(settings.host, settings.port)
    sock.listen(2048)
    sock.set_inheritable(True)
    ctx = multiprocessing.get_context("spawn")
    children = [
        ctx.Process(target=_api_process, args=(settings, sock), name=f"reelgate-api-{i}")
        for i in range(settings.api_workers)
    ]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    for child in children:
        child.start()
    log.info(
        "%d API processes on http://%s:%d (no worker: run `reelgate worker`)",
        len(children),
        settings.host,
        settings.port,
    )
    status = 0
    while not stop.wait(0.5):
        dead = [c for c in children if not c.is_alive()]
        if dead:
            log.error(
                "API process %s exited with %s; stopping the others", dead[0].name, dead[0].exitcode
            )
            status = 1
            break
    for child in children:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join(settings.shutdown_grace_s + CHILD_GRACE_S)
        if child.is_alive():
            child.kill()
            child.join()
    sock.close()
    return status


def _api_process(settings: Settings, sock: socket.socket) -> None:
    """One API process (started by spawn): the API, the dispatcher and the sweeper."""
    from .runtime import configure_logging

    configure_logging(settings)
    run(_serve(settings, sock), settings)


async def _serve(settings: Settings, sock: socket.socket) -> None:
    import uvicorn

    from .runtime import build_app, freeze_startup_heap

    async with AsyncExitStack() as stack:
        app, _ = await build_app(settings, stack, bootstrap=False)
        freeze_startup_heap()
        config = uvicorn.Config(app, **uvicorn_options(settings))
        await uvicorn.Server(config).serve(sockets=[sock])
