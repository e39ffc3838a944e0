"""CLI flags that mirror settings: each one's --help names its REELGATE_* variable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reelgate.settings import help_for

DataDir = Annotated[Path | None, typer.Option("--data-dir", help=help_for("data_dir"))]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help=help_for("database_url"))]
Host = Annotated[str | None, typer.Option("--host", help=help_for("host"))]
Port = Annotated[int | None, typer.Option("--port", help=help_for("port"))]
Workers = Annotated[int | None, typer.Option("--workers", help=help_for("workers"))]
Models = Annotated[Path | None, typer.Option("--models", help=help_for("models_file"))]
DefaultModel = Annotated[
    str | None, typer.Option("--default-model", help=help_for("default_model"))
]
PublicUrl = Annotated[str | None, typer.Option("--public-url", help=help_for("public_url"))]
Json = Annotated[bool, typer.Option("--json", help="print one JSON object (for scripts)")]
