"""Operator commands: serve, worker, keys, db, models."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reelgate.settings import Settings, help_for

from .options import (
    MARKUP_MODE,
    ApiWorkers,
    DatabaseUrl,
    DataDir,
    DefaultModel,
    Host,
    Json,
    Models,
    Port,
    PublicUrl,
    ServeModels,
    StorageUrl,
    Workers,
)

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) is imported by the commands that use it
    from reelgate.store import Credentials


def bind_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port``, checked the way uvicorn binds, before
    anything is built; None when it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is already in use (set --port or REELGATE_PORT)"
        return f"cannot listen on {host}:{port}: {exc.strerror or exc} (set --host/--port)"
    return None


def settings_from(**flags: Any) -> Settings:
    try:
        return Settings.from_env(**flags)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def serve(
    host: Host = None,
    port: Port = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    workers: Workers = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="run the API alone (env: REELGATE_RUN_WORKER=false)")
    ] = False,
    models: Models = None,
    default_model: DefaultModel = None,
    public_url: PublicUrl = None,
    storage_url: StorageUrl = None,
    realistic: Annotated[bool, typer.Option("--realistic", help=help_for("realistic"))] = False,
    api_workers: ApiWorkers = None,
) -> None:
    """Run the HTTP API (and, by default, a worker) on the configured store."""
    settings = settings_from(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        workers=workers,
        run_worker=False if no_worker else None,
        models_file=models,
        default_model=default_model,
        public_url=public_url,
        storage_url=storage_url,
        realistic=True if realistic else None,
        api_workers=api_workers,
    )
    from .serving import api_workers_problem, run, serve_api_processes

    problem = (
        api_workers_problem(settings)
        or settings.signing_key_problem()
        or bind_problem(settings.host, settings.port)
    )
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    from .runtime import StartupError, run_server

    try:
        if settings.api_workers > 1:
            raise typer.Exit(serve_api_processes(settings))
        run(run_server(settings), settings)
    except StartupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def worker(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    storage_url: StorageUrl = None,
    workers: Workers = None,
    models: Models = None,
    serve_models: ServeModels = None,
) -> None:
    """Run a worker on its own: claim tasks from the store, run their engines, put the results
    in the storage. On another machine it needs the store (--database-url), the storage
    (--storage-url s3://..., credentials from REELGATE_S3_* or AWS_*) and a catalogue; its data
    directory then holds only scratch space."""
    # No --public-url: a worker signs no links (the API and the callback dispatcher do).
    settings = settings_from(
        data_dir=data_dir,
        database_url=database_url,
        storage_url=storage_url,
        workers=workers,
        models_file=models,
        serve_models=serve_models,
    )
    from .runtime import StartupError, run_worker
    from .serving import run

    try:
        run(run_worker(settings), settings)
    except StartupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


keys_app = typer.Typer(
    help="Accounts and their credentials.", no_args_is_help=True, rich_markup_mode=MARKUP_MODE
)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="a label for the account or key")],
    account: Annotated[
        int | None, typer.Option("--account", help="add keys to this existing account id")
    ] = None,
    max_concurrent: Annotated[
        int | None,
        typer.Option(
            "--max-concurrent",
            min=0,
            help="unfinished tasks the account may have at once, 0: unlimited (default: a new"
            " account follows REELGATE_MAX_CONCURRENT_TASKS; with --account, the limit stays)",
            show_default=False,
        ),
    ] = None,
    rate_limit: Annotated[
        int | None,
        typer.Option(
            "--rate-limit",
            min=0,
            help="requests per minute each of the account's keys may send, 0: unlimited"
            " (default: a new account follows REELGATE_RATE_LIMIT; with --account, the limit"
            " stays)",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: Json = False,
) -> None:
    """Create an account (or add to one) and print its AK, SK and API key once."""
    settings = settings_from(data_dir=data_dir, database_url=database_url)

    async def run() -> Credentials:
        from reelgate.store import Store

        store = await Store.open(settings.store_url)
        try:
            if account is None:
                return await store.create_account(
                    name, max_concurrent_tasks=max_concurrent, rate_limit=rate_limit
                )
            try:
                if max_concurrent is not None:
                    await store.set_max_concurrent_tasks(account, max_concurrent)
                if rate_limit is not None:
                    await store.set_rate_limit(account, rate_limit)
                return await store.add_credentials(account, name)
            except LookupError as exc:
                raise typer.BadParameter(str(exc), param_hint="--account") from None
        finally:
            await store.close()

    creds = asyncio.run(run())
    if json_out:
        payload = {"account_id": creds.account_id, **credentials_json(creds)}
        if max_concurrent is not None:
            payload["max_concurrent_tasks"] = max_concurrent
        if rate_limit is not None:
            payload["rate_limit"] = rate_limit
        typer.echo(json.dumps(payload))
        return
    typer.echo(f"account:    {creds.account_id}")
    if max_concurrent is not None:
        typer.echo(f"max concurrent tasks: {max_concurrent or 'unlimited'}")
    if rate_limit is not None:
        typer.echo(f"rate limit: {f'{rate_limit} requests/min per key' if rate_limit else 'off'}")
    typer.echo(f"access_key: {creds.access_key}")
    typer.echo(f"secret_key: {creds.secret_key}")
    typer.echo(f"api_key:    {creds.api_key}")
    typer.echo("The secret key and API key are shown only now; store them safely.")


def credentials_json(creds: Credentials) -> dict[str, Any]:
    return {
        "access_key": creds.access_key,
        "secret_key": creds.secret_key,
        "api_key": creds.api_key,
    }


db_app = typer.Typer(help="The store's schema.", no_args_is_help=True, rich_markup_mode=MARKUP_MODE)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Apply all migrations to the store."""
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    from reelgate.store.db import create_engine, dispose
    from reelgate.store.migrate import current_revision, upgrade

    async def run() -> str | None:
        engine = create_engine(settings.store_url)
        try:
            await upgrade(engine)
            return await current_revision(engine)
        finally:
            await dispose(engine)

    typer.echo(f"store at revision {asyncio.run(run())}")


models_app = typer.Typer(
    help="The served model catalogue.", no_args_is_help=True, rich_markup_mode=MARKUP_MODE
)


@models_app.command("list")
def models_list(
    models: Models = None, default_model: DefaultModel = None, json_out: Json = False
) -> None:
    """Print the served models: ids, aliases, engine, capabilities, units and health."""
    settings = settings_from(models_file=models, default_model=default_model)
    from reelgate.engines.registry import CatalogError

    from .runtime import load_engines

    try:
        engines = load_engines(settings)
    except CatalogError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    rows = []
    health = engines.health()
    for spec in engines.catalog.specs:
        item = spec.as_dict()
        item["default"] = spec.id == engines.catalog.default.id
        item["health"] = health[spec.id]
        rows.append(item)
    asyncio.run(engines.aclose())
    if json_out:
        typer.echo(json.dumps(rows))
        return
    for item in rows:
        caps = item["capabilities"]
        aliases = f" (aliases: {', '.join(item['aliases'])})" if item["aliases"] else ""
        default = " [default]" if item["default"] else ""
        typer.echo(
            f"{item['id']}{default}{aliases}  engine={item['engine']}  health={item['health']}"
        )
        typer.echo(
            f"    modes={','.join(caps['modes'])} durations={caps['durations']}"
            f" aspect_ratios={','.join(caps['aspect_ratios'])} cfg_scale={caps['cfg_scale']}"
            f" sound={','.join(caps['sound']) or 'no'}"
            f" camera_control={','.join(caps['camera_control']['modes']) or 'no'}"
        )


def write_credentials_file(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` readable by the owner only (0600), never wider even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")
    os.chmod(path, 0o600)
