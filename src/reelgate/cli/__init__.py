"""``reelgate`` command line: noun-verb commands over the SDK, the API and the worker."""

from __future__ import annotations

import typer

from . import client_commands, sandbox, server
from .options import MARKUP_MODE

app = typer.Typer(
    name="reelgate",
    help="Kling-compatible text-to-video service: run it, manage keys, generate videos.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=MARKUP_MODE,
)
app.command("serve")(server.serve)
app.command("worker")(server.worker)
app.command("sandbox")(sandbox.sandbox)
app.add_typer(server.keys_app, name="keys")
app.add_typer(server.db_app, name="db")
app.add_typer(server.models_app, name="models")

client_commands.register(app)


def main() -> None:
    app()
