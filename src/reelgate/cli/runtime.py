"""Assembling and running the processes: `reelgate serve` and `reelgate worker`."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import sys
from contextlib import AsyncExitStack
from functools import partial
from typing import TextIO

from fastapi import FastAPI

from reelgate import logs
from reelgate.api import create_app
from reelgate.api.app import Background
from reelgate.callbacks import CallbackDispatcher
from reelgate.domain.models import Catalog
from reelgate.engines.registry import Engines, build_engines, read_catalog_file
from reelgate.settings import Settings, env_name
from reelgate.storage import Storage, StorageConfigError, open_storage
from reelgate.store import Store
from reelgate.worker import Worker
from reelgate.worker.maintenance import RetentionSweeper
from reelgate.worker.sandbox import connect_sandbox

from .server import credentials_json, write_credentials_file

log = logging.getLogger("reelgate")


def configure_logging(settings: Settings) -> None:
    """Text or JSON lines (REELGATE_LOG_FORMAT) on stderr, uvicorn's lines included."""
    logs.configure_logging(settings.log_format)


def freeze_startup_heap() -> None:
    """Leave what start-up built out of every later garbage collection (``gc.freeze``).

    The modules, schemas, routes and tables a server builds at start live as long as it does,
    and a full collection walked all of them each time: 60-70 ms with the event loop stopped,
    eleven times in 6 s of creates at 64 connections, which was the create's p99 (bench/api.py,
    2026-12-07). Called once a process is built, just before it serves; the garbage of start-up
    is collected first, so none of it is kept.
    """
    gc.collect()
    gc.freeze()


class StartupError(Exception):
    """A setting the process cannot start with; its message is the one line to show."""


def storage_from(settings: Settings) -> Storage:
    try:
        return open_storage(settings)
    except StorageConfigError as exc:
        raise StartupError(f"{env_name(exc.setting)}: {exc}") from None


def served_catalog(settings: Settings, catalog: Catalog) -> Catalog:
    """The part of ``catalog`` a worker claims tasks for: SERVE_MODELS (ids or aliases), else
    all of it."""
    if not settings.serve_models:
        return catalog
    specs = []
    for name in (part.strip() for part in settings.serve_models.split(",")):
        spec = catalog.get(name) if name else None
        if spec is None:
            served = ", ".join(s.id for s in catalog.specs)
            raise StartupError(
                f"{env_name('serve_models')}: {name!r} is not a model of the catalogue"
                f" (models: {served})"
            )
        if spec not in specs:
            specs.append(spec)
    return Catalog(specs)


def load_engines(settings: Settings) -> Engines:
    entries = read_catalog_file(settings.models_file) if settings.models_file else None
    return build_engines(entries, settings.data_dir, settings.default_model)


def interactive_terminal() -> TextIO | None:
    """The stream to show secrets on: stderr, else stdout, when it is a terminal; else None."""
    for stream in (sys.stderr, sys.stdout):
        if stream.isatty():
            return stream
    return None


async def bootstrap_first_account(
    store: Store, settings: Settings, terminal: TextIO | None = None
) -> None:
    """On a brand-new store: create a local account, save its keys to ``credentials.json``
    (0600), and show them only on ``terminal``; the log names the file, never a key."""
    if await store.count_accounts() > 0:
        return
    creds = await store.create_account("local")
    payload = {**credentials_json(creds), "base_url": settings.base_url}
    path = settings.data_dir / "credentials.json"
    write_credentials_file(path, payload)
    log.info("created a local account; its keys are in %s (mode 0600)", path.resolve())
    if terminal is None:
        return
    base = settings.base_url
    print(
        "\nreelgate: created a local account (saved to "
        f"{path}, mode 0600)\n"
        f"  access_key: {creds.access_key}\n"
        f"  secret_key: {creds.secret_key}\n"
        f"  api_key:    {creds.api_key}\n\n"
        "Try it:\n"
        f"  curl -s {base}/v1/videos/text2video \\\n"
        f"    -H 'Authorization: Bearer {creds.api_key}' \\\n"
        "    -H 'Content-Type: application/json' \\\n"
        f"    -d {json.dumps(json.dumps({'prompt': 'a lighthouse at dusk, waves crashing'}))}\n",
        file=terminal,
        flush=True,
    )


async def build_app(
    settings: Settings, stack: AsyncExitStack, *, bootstrap: bool = True
) -> tuple[FastAPI, Store]:
    """Everything `reelgate serve` runs: engines, store, storage, worker, dispatcher, API.

    Resources are closed by ``stack``; the background services run in the app's lifespan.
    """
    storage = storage_from(settings)
    engines = load_engines(settings)
    stack.push_async_callback(engines.aclose)
    store = await Store.open(settings.store_url)
    stack.push_async_callback(store.close)
    connect_sandbox(engines.engines, store)
    if bootstrap:
        await bootstrap_first_account(store, settings, interactive_terminal())
    background: list[Background] = [
        RetentionSweeper(storage, settings),
        CallbackDispatcher(
            store, settings, links=lambda base, ttl: partial(storage.sign, base_url=base, ttl_s=ttl)
        ),
    ]
    if settings.run_worker:
        background.append(Worker(store, engines.engines, engines.catalog, storage, settings))
    app = create_app(
        settings,
        store=store,
        catalog=engines.catalog,
        storage=storage,
        background=background,
        health=engines.health,
    )
    return app, store


async def prepare_store(settings: Settings) -> None:
    """Migrate the store and create the first account, before several API processes start."""
    store = await Store.open(settings.store_url)
    try:
        await bootstrap_first_account(store, settings, interactive_terminal())
    finally:
        await store.close()


async def run_server(settings: Settings) -> None:
    import uvicorn

    from .serving import uvicorn_options

    configure_logging(settings)
    async with AsyncExitStack() as stack:
        app, _ = await build_app(settings, stack)
        freeze_startup_heap()
        await uvicorn.Server(uvicorn.Config(app, **uvicorn_options(settings))).serve()


async def run_worker(settings: Settings) -> None:
    """A worker on its own: the store, the storage and the catalogue are all it needs."""
    configure_logging(settings)
    engines = load_engines(settings)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engines.aclose)
        storage = storage_from(settings)
        catalog = served_catalog(settings, engines.catalog)
        store = await Store.open(settings.store_url)
        stack.push_async_callback(store.close)
        connect_sandbox(engines.engines, store)
        used = {spec.engine for spec in catalog.specs}
        served = {name: engine for name, engine in engines.engines.items() if name in used}
        worker = Worker(store, served, catalog, storage, settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
        log.info(
            "worker %s: %d slot(s), models %s",
            worker.worker_id,
            worker.slots,
            ", ".join(spec.id for spec in catalog.specs),
        )
        log.info("worker %s: results go to %s", worker.worker_id, storage.location)
        freeze_startup_heap()
        await worker.run_until_stopped()
        log.info("worker %s stopped", worker.worker_id)
