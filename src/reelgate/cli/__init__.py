"""``reelgate`` command line: noun-verb commands over the SDK, the API and the worker.

The client commands (``generate``, ``tasks ...``) and the SDK under them are imported only when
one of them runs or a help page lists them, so that ``reelgate sandbox`` and the operator
commands start without them.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from . import sandbox, server
from .options import MARKUP_MODE

#: the commands ``client_commands.register`` adds
CLIENT_COMMANDS = ("generate", "tasks")


class _Commands(TyperGroup):
    """The ``reelgate`` group, which loads the client commands on first use."""

    def _load_client_commands(self) -> None:
        if all(name in self.commands for name in CLIENT_COMMANDS):
            return
        from . import client_commands

        client_app = typer.Typer(rich_markup_mode=MARKUP_MODE)
        client_commands.register(client_app)
        group = typer.main.get_group(client_app)
        self.commands.update({name: group.commands[name] for name in CLIENT_COMMANDS})

    # ctx and the command are click's types, which typer vendors (typer._click) from 0.2x on
    def list_commands(self, ctx: Any) -> list[str]:
        self._load_client_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in CLIENT_COMMANDS:
            self._load_client_commands()
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="reelgate",
    cls=_Commands,
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


def main() -> None:
    app()
