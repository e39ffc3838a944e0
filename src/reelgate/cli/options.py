"""CLI flags that mirror settings: each one's --help names its REELGATE_* variable and default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from reelgate.settings import default_of, help_for

#: plain help (click's): flags read as flags, defaults as ``[default: …]``
MARKUP_MODE = None


def mirror(flag: str, name: str) -> Any:
    """A ``typer.Option`` for setting ``name``: None means "not given", so the variable and then
    the setting's own default apply; ``--help`` shows that default when it is a value."""
    default = default_of(name)
    shown = "" if default is None else f"  [default: {default}]"
    return typer.Option(flag, help=help_for(name) + shown, show_default=False)


DataDir = Annotated[Path | None, mirror("--data-dir", "data_dir")]
DatabaseUrl = Annotated[str | None, mirror("--database-url", "database_url")]
Host = Annotated[str | None, mirror("--host", "host")]
Port = Annotated[int | None, mirror("--port", "port")]
Workers = Annotated[int | None, mirror("--workers", "workers")]
ApiWorkers = Annotated[int | None, mirror("--api-workers", "api_workers")]
Models = Annotated[Path | None, mirror("--models", "models_file")]
DefaultModel = Annotated[str | None, mirror("--default-model", "default_model")]
PublicUrl = Annotated[str | None, mirror("--public-url", "public_url")]
StorageUrl = Annotated[str | None, mirror("--storage-url", "storage_url")]
ServeModels = Annotated[str | None, mirror("--serve-models", "serve_models")]
Json = Annotated[bool, typer.Option("--json", help="print one JSON object (for scripts)")]
