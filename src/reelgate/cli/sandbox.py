"""``reelgate sandbox``: the Kling emulator in one command, for client projects' tests and CI.

A server on the sandbox engine with fixed, printed credentials (or those given by flags), the
``/_sandbox`` control routes, and all state in a temporary directory removed on exit. Heavy
imports (the server stack) happen inside the command, so ``reelgate --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import uvicorn

    from reelgate.settings import Settings

from .options import Json

# Fixed so a test suite can hard-code them; the server only listens on loopback by default.
API_KEY = "rg-sandbox"
ACCESS_KEY = "AKsandbox"
SECRET_KEY = "sandbox-secret-key-for-local-tests-only"  # 32+ bytes: HS256 wants them
ADMIN_KEY = "sbx-sandbox-admin"


def sandbox(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", help="port to listen on; 0 picks a free one (printed)"),
    ] = 8000,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="fidelity profile: kling (official limits) or cometapi (500/200-character"
            " prompts, extra aspect ratios 4:3, 3:4, 3:2, 2:3)",
        ),
    ] = "kling",
    scenarios: Annotated[
        Path | None,
        typer.Option("--scenarios", help="TOML file of scenario rules ([[scenarios]] entries)"),
    ] = None,
    api_key: Annotated[str, typer.Option("--api-key", help="the account's API key")] = API_KEY,
    access_key: Annotated[
        str, typer.Option("--access-key", help="the account's access key (JWT iss)")
    ] = ACCESS_KEY,
    secret_key: Annotated[
        str, typer.Option("--secret-key", help="the account's secret key (JWT signing)")
    ] = SECRET_KEY,
    admin_key: Annotated[
        str, typer.Option("--admin-key", help="bearer key of the /_sandbox control routes")
    ] = ADMIN_KEY,
    json_out: Json = False,
) -> None:
    """Run a throwaway Kling emulator: sandbox engine, fixed credentials, temporary state.

    Self-contained: REELGATE_* variables are not read, only these flags.
    """
    from reelgate.domain.profiles import profile_named
    from reelgate.domain.scenarios import ScenarioBook, ScenarioError
    from reelgate.settings import Settings

    try:
        profile_named(profile)
        if scenarios is not None:
            ScenarioBook.from_file(scenarios)
    except (ValueError, ScenarioError) as exc:
        raise typer.BadParameter(str(exc)) from None
    data_dir = Path(tempfile.mkdtemp(prefix="reelgate-sandbox-"))
    try:
        settings = Settings.from_env(
            {},  # a sandbox ignores the operator's REELGATE_* environment: it is self-contained
            data_dir=data_dir,
            host=host,
            port=port,
            profile=profile,
            scenarios_file=scenarios.resolve() if scenarios is not None else None,
            sandbox_admin_key=admin_key,
            callback_allow_private=True,  # a test's receiver listens on loopback
            sqlite_synchronous="NORMAL",  # the state is thrown away anyway
            workers=4,
        )
        creds = {"api_key": api_key, "access_key": access_key, "secret_key": secret_key}
        # uvicorn stops on SIGTERM, then raises it again: end like Ctrl-C, so the state goes
        signal.signal(signal.SIGTERM, _interrupt)
        asyncio.run(_run(settings, creds, json_out))
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def _run(settings: Settings, creds: dict[str, str], json_out: bool) -> None:
    import uvicorn

    from reelgate.store.sandbox import SandboxControl

    from .runtime import build_app, freeze_startup_heap
    from .serving import bound_socket

    sock = bound_socket(settings.host, settings.port)
    port = sock.getsockname()[1]
    settings = settings.replace(port=port)
    async with AsyncExitStack() as stack:
        app, store = await build_app(settings, stack, bootstrap=False)
        await SandboxControl(store.engine, store.clock).ensure_account(
            "sandbox", creds["access_key"], creds["secret_key"], creds["api_key"]
        )
        freeze_startup_heap()
        config = uvicorn.Config(app, log_level="warning", proxy_headers=False, lifespan="on")
        announce = partial(_announce, settings, creds, json_out)
        await _announcing_server(config, announce).serve(sockets=[sock])


def _announcing_server(config: uvicorn.Config, ready: Callable[[], None]) -> uvicorn.Server:
    """uvicorn's server, calling ``ready`` once it accepts connections."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                ready()

    return Server(config)


def _announce(settings: Settings, creds: dict[str, str], json_out: bool) -> None:
    info = {
        "base_url": settings.base_url,
        **creds,
        "admin_key": settings.sandbox_admin_secret(),
        "profile": settings.profile,
        "data_dir": str(settings.data_dir),
    }
    path = settings.data_dir / "credentials.json"
    path.write_text(json.dumps(info, indent=2) + "\n")
    if json_out:
        print(json.dumps(info), flush=True)
        return
    print(
        f"reelgate sandbox ready at {info['base_url']} (profile {info['profile']})\n"
        f"  api_key:    {info['api_key']}\n"
        f"  access_key: {info['access_key']}\n"
        f"  secret_key: {info['secret_key']}\n"
        f"  admin_key:  {info['admin_key']}  (Authorization for /_sandbox/...)\n"
        f"  state:      {info['data_dir']} (removed on exit)\n"
        "Stop with Ctrl-C.",
        file=sys.stderr,
        flush=True,
    )
