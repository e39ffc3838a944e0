"""Client commands, thin over the SDK: ``reelgate generate`` and ``reelgate tasks ...``.

Results go to stdout (``--json`` for scripts), progress and errors to stderr. An error is one line,
``error [CODE]: MESSAGE``, and exit status 1; Ctrl-C while waiting leaves the task running, says
how to resume, and exits with 130.
"""

from __future__ import annotations

import functools
import inspect
import json
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, cast

import typer
from rich import progress as rp
from rich.console import Console
from rich.table import Table

from reelgate.client import Client, CreateOptions, ReelgateError, Task, WaitTimeoutError
from reelgate.client.config import DEFAULT_DATA_DIR, resolve_config
from reelgate.client.task import DEFAULT_POLL_INTERVAL, DEFAULT_WAIT_TIMEOUT
from reelgate.domain.requests import CAMERA_AXES, Text2VideoRequest

from .options import MARKUP_MODE

_CREDS = "default: $REELGATE_{0}, then DATA_DIR/credentials.json of a local server"
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="server URL, e.g. https://api-singapore.klingai.com or https://api.cometapi.com/kling"
        " (default: $REELGATE_BASE_URL, then DATA_DIR/credentials.json, then"
        " http://127.0.0.1:8000)",
        show_default=False,
    ),
]
AccessKey = Annotated[
    str | None, typer.Option("--access-key", help=f"AccessKey ({_CREDS.format('ACCESS_KEY')})")
]
SecretKey = Annotated[
    str | None, typer.Option("--secret-key", help=f"SecretKey ({_CREDS.format('SECRET_KEY')})")
]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", help=f"API key, instead of AK/SK ({_CREDS.format('API_KEY')})"),
]
ClientDataDir = Annotated[
    str | None,
    typer.Option(
        "--data-dir",
        help="data directory of a local `reelgate serve`, whose credentials.json is read when no"
        f" key is given (default: $REELGATE_DATA_DIR, then ./{DEFAULT_DATA_DIR})",
        show_default=False,
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
# A string, not a Path: "out/" (with the slash) names a directory that may not exist yet.
Output = Annotated[
    str | None,
    typer.Option("-o", "--output", help="file or directory/ for the video (default: TASK_ID.mp4)"),
]
Timeout = Annotated[
    float, typer.Option("--timeout", help="seconds to wait before giving up (the task runs on)")
]
PollInterval = Annotated[float, typer.Option("--poll-interval", help="seconds between queries")]
TaskId = Annotated[str, typer.Argument(help="task_id, or your external_task_id", metavar="TASK_ID")]


def _server_default(field: str) -> str:
    """``(default: …)`` for a request field left out: what the server then applies."""
    return f"(default: {Text2VideoRequest.model_fields[field].default})"


@dataclass(frozen=True)
class Connection:
    base_url: str | None
    access_key: str | None
    secret_key: str | None
    api_key: str | None
    data_dir: str | None = None

    def resume_hint(self, task_id: str, output: str | None) -> str:
        words = ["reelgate", "tasks", "wait", task_id]
        if output is not None:
            words += ["-o", output]
        if self.base_url:
            words += ["--base-url", self.base_url]
        if self.data_dir:
            words += ["--data-dir", self.data_dir]
        return shlex.join(words)


#: the options every client command takes, as Connection's fields (declared here only)
CONNECTION_OPTIONS: dict[str, Any] = {
    "base_url": BaseUrl,
    "access_key": AccessKey,
    "secret_key": SecretKey,
    "api_key": ApiKey,
    "data_dir": ClientDataDir,
}


def connected(command: Callable[..., None]) -> Callable[..., None]:
    """``command(..., conn: Connection)`` as a typer command that takes the connection options
    (``--base-url``, ``--access-key``, ``--secret-key``, ``--api-key``, ``--data-dir``) instead
    of ``conn``, last in its ``--help``."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "conn"]
    options = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in CONNECTION_OPTIONS.items()
    ]

    @functools.wraps(command)
    def run(*args: Any, **values: Any) -> None:
        conn = Connection(**{name: values.pop(name, None) for name in CONNECTION_OPTIONS})
        command(*args, conn=conn, **values)

    run.__signature__ = signature.replace(parameters=[*own, *options])  # type: ignore[attr-defined]
    return run


def open_client(conn: Connection) -> Client:
    """The SDK client for a command (tests replace this to inject a transport).

    Without credentials from any source, a ValueError says which sources were tried.
    """
    config = resolve_config(
        conn.base_url,
        api_key=conn.api_key,
        access_key=conn.access_key,
        secret_key=conn.secret_key,
        data_dir=conn.data_dir,
    )
    if config.auth is None:
        raise ValueError(config.missing_credentials_message())
    creds = config.credentials
    return Client(
        config.base_url,
        access_key=creds.access_key,
        secret_key=creds.secret_key,
        api_key=creds.api_key,
    )


@contextmanager
def reported_errors() -> Iterator[None]:
    try:
        yield
    except ReelgateError as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:  # configuration: a bad base URL, a key without its secret
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def parse_camera(spec: str) -> dict[str, Any]:
    """``TYPE`` or ``simple:AXIS=VALUE`` (e.g. ``simple:zoom=5``) as a camera_control object."""
    kind, _, axis_value = spec.partition(":")
    if not axis_value:
        return {"type": kind}
    axis, equals, value = axis_value.partition("=")
    if not equals or axis not in CAMERA_AXES:
        raise typer.BadParameter(
            f"expected TYPE or TYPE:AXIS=VALUE with AXIS one of {', '.join(CAMERA_AXES)}",
            param_hint="--camera",
        )
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number", param_hint="--camera") from None
    return {"type": kind, "config": {axis: number}}


def _emit_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2))


def _status_line(task: Task) -> str:
    return f"{task.status} {task.status_msg}".strip()


@dataclass(frozen=True)
class Waiting:
    """How a command waits: ``--timeout``, ``--poll-interval``; ``--json`` hides the bar."""

    timeout: float
    poll_interval: float
    json_out: bool

    def wait(self, task: Task) -> None:
        if self.json_out:
            task.wait(timeout=self.timeout, poll_interval=self.poll_interval)
            return
        description = rp.TextColumn("{task.description}")
        bar_parts = (rp.BarColumn(), rp.TaskProgressColumn(), rp.TimeElapsedColumn())
        with rp.Progress(
            rp.SpinnerColumn(), description, *bar_parts, console=Console(stderr=True)
        ) as progress:
            bar = progress.add_task(f"{task.id} {task.status}", total=100, completed=task.progress)

            def show(t: Task) -> None:
                progress.update(bar, completed=t.progress, description=f"{t.id} {_status_line(t)}")

            task.wait(timeout=self.timeout, poll_interval=self.poll_interval, on_progress=show)


def _finish(task: Task, conn: Connection, dest: str | None, waiting: Waiting) -> None:
    """Wait for ``task`` with a progress bar, download it to ``dest`` (None: don't), and print
    the result."""
    hint = conn.resume_hint(task.id, dest)
    try:
        waiting.wait(task)
        path = task.download(dest) if dest is not None else None
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted: task {task.id} keeps running. Resume with: {hint}", err=True)
        raise typer.Exit(130) from None
    except WaitTimeoutError as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}; resume with: {hint}", err=True)
        raise typer.Exit(1) from None
    if waiting.json_out:
        _emit_json({"task": task.to_dict(), "path": str(path) if path else None})
    elif path is not None:
        typer.echo(str(path))
    else:
        typer.echo(f"{task.id} {task.status}")


@connected
def generate(
    prompt: Annotated[str, typer.Argument(help="what the video shows", metavar="PROMPT")],
    output: Output = None,
    model: Annotated[
        str | None, typer.Option("--model", help="model_name (default: the server's default)")
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help=f"std or pro {_server_default('mode')}")
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help=f"seconds {_server_default('duration')}")
    ] = None,
    aspect_ratio: Annotated[
        str | None, typer.Option(help=f"16:9, 9:16 or 1:1 {_server_default('aspect_ratio')}")
    ] = None,
    negative_prompt: Annotated[
        str | None, typer.Option("--negative-prompt", help="what the video should avoid")
    ] = None,
    cfg_scale: Annotated[
        float | None, typer.Option("--cfg-scale", help="0..1 (default: the model's own)")
    ] = None,
    sound: Annotated[
        bool | None,
        typer.Option(
            "--sound/--no-sound",
            help=f"an audio track {_server_default('sound')}",
            show_default=False,
        ),
    ] = None,
    camera: Annotated[
        str | None,
        typer.Option("--camera", help="TYPE or simple:AXIS=VALUE, e.g. down_back, simple:zoom=5"),
    ] = None,
    watermark: Annotated[bool, typer.Option("--watermark", help="also a watermarked copy")] = False,
    external_id: Annotated[str | None, typer.Option(help="your own id for the task")] = None,
    callback_url: Annotated[str | None, typer.Option(help="notified on status changes")] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="submit, print the id, return")
    ] = False,
    timeout: Timeout = DEFAULT_WAIT_TIMEOUT,
    poll_interval: PollInterval = DEFAULT_POLL_INTERVAL,
    json_out: JsonOut = False,
    *,
    conn: Connection,
) -> None:
    """Create a text-to-video task, wait for it with a progress bar, download the MP4."""
    given: dict[str, Any] = {
        "model_name": model,
        "mode": mode,
        "duration": duration,
        "aspect_ratio": aspect_ratio,
        "negative_prompt": negative_prompt,
        "cfg_scale": cfg_scale,
        "sound": sound,
        "camera_control": parse_camera(camera) if camera else None,
        "watermark": True if watermark else None,
        "external_task_id": external_id,
        "callback_url": callback_url,
    }
    options = cast(CreateOptions, {k: v for k, v in given.items() if v is not None})
    with reported_errors(), open_client(conn) as client:
        task = client.text2video.create(prompt, **options)
        if no_wait:
            if json_out:
                _emit_json({"task": task.to_dict(), "path": None})
            else:
                typer.echo(task.id)
            return
        dest = output if output is not None else task.video_filename()
        _finish(task, conn, dest, Waiting(timeout, poll_interval, json_out))


tasks_app = typer.Typer(
    help="List, show, wait for, cancel and download tasks.",
    no_args_is_help=True,
    rich_markup_mode=MARKUP_MODE,
)


@tasks_app.command("list")
@connected
def tasks_list(
    page: Annotated[int, typer.Option("--page", help="page number, 1..1000")] = 1,
    page_size: Annotated[int, typer.Option("--page-size", help="tasks per page, 1..500")] = 30,
    json_out: JsonOut = False,
    *,
    conn: Connection,
) -> None:
    """Your tasks, newest first."""
    with reported_errors(), open_client(conn) as client:
        tasks = client.text2video.list(page=page, page_size=page_size)
    if json_out:
        _emit_json([t.to_dict() for t in tasks])
        return
    table = Table("TASK_ID", "STATUS", "PROGRESS", "MODEL", "EXTERNAL_ID", box=None)
    for t in tasks:
        table.add_row(
            t.id, str(t.status), f"{t.progress}%", t.model_name or "", t.external_task_id or ""
        )
    Console(soft_wrap=True).print(table)


@tasks_app.command("show")
@connected
def tasks_show(
    task_id: TaskId,
    json_out: JsonOut = False,
    *,
    conn: Connection,
) -> None:
    """One task's status, progress and video links."""
    with reported_errors(), open_client(conn) as client:
        task = client.text2video.get(task_id)
    if json_out:
        _emit_json(task.to_dict())
        return
    rows = {
        "task_id": task.id,
        "status": _status_line(task),
        "progress": f"{task.progress}%",
        "model": task.model_name or "",
        "external_task_id": task.external_task_id or "",
        "units": task.units,
    }
    rows.update({f"video[{i}]": v.url for i, v in enumerate(task.videos)})
    for key, value in rows.items():
        typer.echo(f"{key + ':':<18}{value}")


@tasks_app.command("cancel")
@connected
def tasks_cancel(
    task_id: TaskId,
    json_out: JsonOut = False,
    *,
    conn: Connection,
) -> None:
    """Cancel a queued or running task (it ends failed, free; a running one within a second)."""
    with reported_errors(), open_client(conn) as client:
        task = client.text2video.cancel(task_id)
    if json_out:
        _emit_json(task.to_dict())
        return
    state = "cancelled" if task.finished else "cancelling"
    typer.echo(f"{task.id}\t{state}\t{_status_line(task)}")


@tasks_app.command("wait")
@connected
def tasks_wait(
    task_id: TaskId,
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="also download the video here")
    ] = None,
    timeout: Timeout = DEFAULT_WAIT_TIMEOUT,
    poll_interval: PollInterval = DEFAULT_POLL_INTERVAL,
    json_out: JsonOut = False,
    *,
    conn: Connection,
) -> None:
    """Wait for a task with a progress bar; with -o, download its video."""
    with reported_errors(), open_client(conn) as client:
        task = client.text2video.get(task_id)
        _finish(task, conn, output, Waiting(timeout, poll_interval, json_out))


@tasks_app.command("download")
@connected
def tasks_download(
    task_id: TaskId,
    output: Output = None,
    watermarked: Annotated[
        bool, typer.Option("--watermarked", help="the watermarked copy")
    ] = False,
    json_out: JsonOut = False,
    *,
    conn: Connection,
) -> None:
    """Download a finished task's video and print its path."""
    with reported_errors(), open_client(conn) as client:
        task = client.text2video.get(task_id)
        path = task.download(output, watermarked=watermarked)
    if json_out:
        _emit_json({"task": task.to_dict(), "path": str(path)})
    else:
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add ``generate`` and the ``tasks`` group to the ``reelgate`` app."""
    app.command("generate")(generate)
    app.add_typer(tasks_app, name="tasks")
