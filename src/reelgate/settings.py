"""Every ``REELGATE_*`` variable, declared once: type, default and a one-line description.

Two pydantic-settings models: :class:`Settings` (the server: ``serve``, ``worker``, ``db``...)
and :class:`ClientSettings` (the SDK and the client commands); ``REELGATE_DATA_DIR`` belongs to
both. This is the only module that reads the environment, and only in ``from_env``: a model
built in code (``Settings(data_dir=...)``) holds the values given and the defaults, never an
operator's variables. The CLI mirrors each setting as a flag whose ``--help`` names the variable
(see :func:`help_for`); the docs and deployment files are checked against :func:`variables`.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

EVENT_LOOPS = ("asyncio", "uvloop")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingError(ValueError):
    """A setting's value breaks its rule; the message names the variable."""


def _setting(env: str, default: Any, help: str) -> Any:
    """A setting read from the variable ``env``; ``help`` is its line in --help and the docs."""
    return Field(default=default, description=help, validation_alias=env)


class _Declared(BaseSettings):
    """What both models share: frozen, typed values, read from a mapping by :meth:`from_env`."""

    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, case_sensitive=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the values given: the environment is read by from_env, once per process, so a
        # model built in code (a test's, a sandbox's) never picks up an operator's variables.
        return (init_settings,)

    @field_validator("*", mode="before")
    @classmethod
    def _bool_spellings(cls, value: Any, info: ValidationInfo) -> Any:
        """A bool from text: 1/true/yes/on or 0/false/no/off, any case; nothing else."""
        field = cls.model_fields[info.field_name or ""]
        if field.annotation is bool and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE + _FALSE:
                return lowered in _TRUE
            raise ValueError(value)
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """The model from ``env`` (default: ``os.environ``), then ``overrides`` that are not None.

        A variable set to the empty string counts as unset. A bad value raises
        :class:`SettingError` naming the variable: ``REELGATE_PORT='x' is not a valid int``.
        """
        source = os.environ if env is None else env
        given = {name: value for name, value in overrides.items() if value is not None}
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            raw = source.get(_env_of(field))
            if raw is not None and raw != "" and name not in given:
                values[name] = raw
        values.update(given)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SettingError(_explain(cls, exc, values)) from None

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, checked like the original (the model is frozen)."""
        return type(self)(**{**dict(self), **changes})


def _env_of(field: FieldInfo) -> str:
    return str(field.validation_alias)


def _explain(model: type[_Declared], exc: ValidationError, values: Mapping[str, Any]) -> str:
    """The first error of ``exc`` as one line that names the variable and the rule."""
    error = exc.errors()[0]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, SettingError):
        return str(cause)
    name = str(error["loc"][0]) if error["loc"] else ""
    field = model.model_fields.get(name)
    if field is None:
        return str(exc)
    kind = _base_type(field.annotation)
    return f"{_env_of(field)}={values.get(name)!r} is not a valid {getattr(kind, '__name__', kind)}"


def _base_type(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


class _DataDir(_Declared):
    data_dir: Path = _setting(
        "REELGATE_DATA_DIR",
        Path("reelgate-data"),
        "directory for the SQLite store and files; clients read a local server's"
        " credentials.json there",
    )


class ClientSettings(_DataDir):
    """What the SDK and the client commands read when the caller passes nothing
    (client/config.py decides which source wins)."""

    base_url: str | None = _setting(
        "REELGATE_BASE_URL",
        None,
        "server URL of the SDK and client commands (default: the base_url in"
        " DATA_DIR/credentials.json, then http://127.0.0.1:8000)",
    )
    api_key: str | None = _setting(
        "REELGATE_API_KEY", None, "API key the client sends (wins over an AK/SK pair)"
    )
    access_key: str | None = _setting(
        "REELGATE_ACCESS_KEY", None, "AccessKey the client signs its JWTs with"
    )
    secret_key: str | None = _setting(
        "REELGATE_SECRET_KEY", None, "SecretKey the client signs its JWTs with"
    )


class Settings(_DataDir):
    """The server's settings, one frozen object passed to ``create_app(settings, ...)``."""

    database_url: str | None = _setting(
        "REELGATE_DATABASE_URL",
        None,
        "SQLAlchemy URL of the store (default: SQLite at DATA_DIR/reelgate.db)",
    )
    host: str = _setting("REELGATE_HOST", "127.0.0.1", "address the HTTP server binds")
    port: int = _setting("REELGATE_PORT", 8000, "port the HTTP server binds")
    public_url: str | None = _setting(
        "REELGATE_PUBLIC_URL",
        None,
        "base URL clients reach this server at, for result links in responses and callbacks"
        " (default: the URL each request came through, as trusted proxies forward it)",
    )
    forwarded_allow_ips: str = _setting(
        "REELGATE_FORWARDED_ALLOW_IPS",
        "127.0.0.1",
        "comma-separated IPs/CIDRs of proxies whose X-Forwarded-Proto/-Host/-For and Forwarded"
        " headers are trusted ('*': any peer)",
    )
    workers: int = _setting("REELGATE_WORKERS", 2, "concurrent task slots of an in-process worker")
    run_worker: bool = _setting(
        "REELGATE_RUN_WORKER", True, "run a worker inside `reelgate serve` (false: API only)"
    )
    api_workers: int = _setting(
        "REELGATE_API_WORKERS",
        1,
        "API processes of `reelgate serve` sharing its port; more than 1 needs --no-worker"
        " (run `reelgate worker` beside them)",
    )
    models_file: Path | None = _setting(
        "REELGATE_MODELS", None, "TOML model catalogue (default: the sandbox's Kling models)"
    )
    default_model: str | None = _setting(
        "REELGATE_DEFAULT_MODEL", None, "model used when a request names none"
    )
    jwt_leeway_s: int = _setting("REELGATE_JWT_LEEWAY", 5, "clock leeway for JWT exp/nbf, seconds")
    max_concurrent_tasks: int = _setting(
        "REELGATE_MAX_CONCURRENT_TASKS",
        0,
        "default per-account limit of unfinished tasks (0: unlimited)",
    )
    event_loop: str = _setting(
        "REELGATE_EVENT_LOOP",
        "asyncio",
        "event loop of `serve` and `worker`: asyncio (Python's own), or uvloop (more req/s"
        " for a bare app, but a 10-20x longer p99 when the API is saturated)",
    )
    log_format: str = _setting(
        "REELGATE_LOG_FORMAT",
        "text",
        "log lines: text, or json (one object a line with request_id and task_id)",
    )
    rate_limit: int = _setting(
        "REELGATE_RATE_LIMIT",
        0,
        "default requests per minute per key, counted in the store across replicas (0: off)",
    )
    signing_key: str | None = _setting(
        "REELGATE_SIGNING_KEY",
        None,
        "secret for signed file links, the same on every API replica; required when the store"
        " is not SQLite and results are in a folder (default: generated in DATA_DIR/signing.key)",
    )
    url_ttl_s: int = _setting(
        "REELGATE_URL_TTL", 86400, "lifetime of signed file links, seconds (S3: at most 604800)"
    )
    storage_url: str | None = _setting(
        "REELGATE_STORAGE_URL",
        None,
        "where results are kept: s3://bucket/prefix for S3-compatible object storage, or a"
        " folder (default: DATA_DIR/files)",
    )
    s3_endpoint_url: str | None = _setting(
        "REELGATE_S3_ENDPOINT_URL",
        None,
        "S3 endpoint, e.g. http://minio:9000 (default: AWS_ENDPOINT_URL, else AWS S3)",
    )
    s3_region: str | None = _setting(
        "REELGATE_S3_REGION", None, "S3 region (default: AWS_REGION / AWS_DEFAULT_REGION)"
    )
    s3_access_key_id: str | None = _setting(
        "REELGATE_S3_ACCESS_KEY_ID", None, "S3 access key id (default: AWS_ACCESS_KEY_ID)"
    )
    s3_secret_access_key: str | None = _setting(
        "REELGATE_S3_SECRET_ACCESS_KEY",
        None,
        "S3 secret access key (default: AWS_SECRET_ACCESS_KEY)",
    )
    serve_models: str | None = _setting(
        "REELGATE_SERVE_MODELS",
        None,
        "comma-separated model ids a worker claims tasks for (default: every catalogue model)",
    )
    retention_days: float = _setting(
        "REELGATE_RETENTION_DAYS", 30.0, "days outputs are kept before the sweep deletes them"
    )
    lease_s: float = _setting(
        "REELGATE_LEASE_SECONDS", 30.0, "worker lease on a task; heartbeats renew it"
    )
    max_attempts: int = _setting(
        "REELGATE_MAX_ATTEMPTS", 3, "times a task is claimed before a lost lease fails it"
    )
    storage_retry_s: float = _setting(
        "REELGATE_STORAGE_RETRY_SECONDS",
        30.0,
        "delay before a task whose outputs hit a full disk is retried; doubles each attempt",
    )
    task_timeout_s: float = _setting(
        "REELGATE_TASK_TIMEOUT",
        3600.0,
        "most seconds a task may spend in processing before it is cancelled and failed"
        " (0: no limit; a model's catalogue timeout_s wins)",
    )
    realistic: bool = _setting(
        "REELGATE_REALISTIC",
        False,
        "tasks wait in submitted and processing about as long as on Kling (tens of seconds,"
        " then 1-5 minutes by model, mode and duration); catalogue submitted_s/processing_s win",
    )
    sqlite_synchronous: str = _setting(
        "REELGATE_SQLITE_SYNCHRONOUS",
        "FULL",
        "SQLite store: FULL (an accepted task survives power loss) or NORMAL (survives a crash"
        " of the process only; faster commits)",
    )
    shutdown_grace_s: float = _setting(
        "REELGATE_SHUTDOWN_GRACE", 30.0, "seconds running tasks get to finish on SIGTERM"
    )
    webhook_secret: str | None = _setting(
        "REELGATE_WEBHOOK_SECRET",
        None,
        "Standard Webhooks secret for signing callbacks (whsec_<base64>, or text used as UTF-8)",
    )
    callback_allow_private: bool = _setting(
        "REELGATE_CALLBACK_ALLOW_PRIVATE",
        False,
        "allow callback URLs on non-global addresses (loopback, private, link-local, CGNAT...)",
    )
    callback_max_attempts: int = _setting(
        "REELGATE_CALLBACK_MAX_ATTEMPTS", 8, "delivery attempts per callback event"
    )
    callback_backoff_s: float = _setting(
        "REELGATE_CALLBACK_BACKOFF", 1.0, "first retry delay of a callback; doubles each attempt"
    )
    callback_timeout_s: float = _setting(
        "REELGATE_CALLBACK_TIMEOUT", 10.0, "timeout of one callback attempt, seconds"
    )

    scenarios_file: Path | None = _setting(
        "REELGATE_SCENARIOS",
        None,
        "TOML file of sandbox scenario rules matched at create (prompt, external_task_id"
        " prefix, X-Reelgate-Scenario header)",
    )
    profile: str = _setting(
        "REELGATE_PROFILE",
        "kling",
        "fidelity profile: kling (official limits) or cometapi (500/200-character prompts,"
        " extra aspect ratios 4:3, 3:4, 3:2, 2:3)",
    )
    sandbox_admin_key: str | None = _setting(
        "REELGATE_SANDBOX_ADMIN_KEY",
        None,
        "bearer key of the /_sandbox control routes (default: generated in"
        " DATA_DIR/sandbox-admin.key)",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        _ = self.forwarded_allow  # a malformed list fails when the settings are read
        if self.log_format not in ("text", "json"):
            raise SettingError(f"{env_name('log_format')}={self.log_format!r} is not text or json")
        if self.event_loop not in EVENT_LOOPS:
            raise SettingError(
                f"{env_name('event_loop')}={self.event_loop!r} is not one of"
                f" {', '.join(EVENT_LOOPS)}"
            )
        return self

    @property
    def forwarded_allow(self) -> tuple[IPNetwork | str, ...]:
        """FORWARDED_ALLOW_IPS parsed: networks (an IP is a /32 or /128), and "*" for any."""
        allow: list[IPNetwork | str] = []
        for item in (part.strip() for part in self.forwarded_allow_ips.split(",")):
            if item == "*":
                allow.append(item)
            elif item:
                try:
                    allow.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise SettingError(
                        f"{env_name('forwarded_allow_ips')}: {item!r} is not an IP address,"
                        " a network (CIDR) or '*'"
                    ) from None
        return tuple(allow)

    @property
    def store_url(self) -> str:
        """The store's URL; a SQLite one carries ``synchronous=`` (read by store/db.py)."""
        if self.database_url:
            url = normalize_database_url(self.database_url)
        else:
            url = f"sqlite+aiosqlite:///{(self.data_dir / 'reelgate.db').resolve()}"
        if url.startswith("sqlite") and "synchronous=" not in url:
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}synchronous={self.sqlite_synchronous.upper()}"
        return url

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def work_dir(self) -> Path:
        """Scratch directories of running attempts: ``WORK_DIR/<task_id>-<attempt>``."""
        return self.data_dir / "work"

    @property
    def base_url(self) -> str:
        """Where this server listens, as a URL (PUBLIC_URL when set); for messages and setup."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def links_base(self, seen: str | None) -> str:
        """Base of result links: PUBLIC_URL, else ``seen`` (the URL a request came through)."""
        return (self.public_url or seen or self.base_url).rstrip("/")

    @property
    def uses_sqlite(self) -> bool:
        return self.store_url.startswith("sqlite")

    @property
    def uses_object_storage(self) -> bool:
        return bool(self.storage_url and self.storage_url.startswith("s3://"))

    def signing_key_problem(self) -> str | None:
        """Why an API process must not start with these settings' link key, or None.

        Replicas on a shared store must check each other's links, so a key generated into
        one machine's data directory will not do: the key is required unless the store is
        SQLite (one machine) or results are presigned object storage links.
        """
        if self.signing_key or self.uses_sqlite or self.uses_object_storage:
            return None
        return (
            f"{env_name('signing_key')} must be set when the store is not SQLite: every API"
            " replica signs and checks file links with it (e.g. the output of"
            " `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )

    def shared_link_secret(self) -> bytes | None:
        """The link key when every process on this store has the same one: SIGNING_KEY, or
        the data directory's on SQLite (one machine); None otherwise (a key generated here
        would check nothing another replica signs, and a worker's data dir keeps no key)."""
        return self.link_secret() if self.signing_key or self.uses_sqlite else None

    def link_secret(self) -> bytes:
        """The signing key, created once in the data directory when not configured."""
        if self.signing_key:
            return self.signing_key.encode()
        path = self.data_dir / "signing.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process created it meanwhile: use theirs
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(32))
        return path.read_text().strip().encode()

    def sandbox_admin_secret(self) -> str:
        """The /_sandbox admin key, created once in the data directory when not configured."""
        if self.sandbox_admin_key:
            return self.sandbox_admin_key
        path = self.data_dir / "sandbox-admin.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write("sbx_" + secrets.token_urlsafe(24))
        return path.read_text().strip()


def normalize_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite:///`` URLs and pick the async drivers."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


@dataclass(frozen=True)
class Variable:
    """One declared variable: the setting (field) it fills, its default and help line."""

    env: str
    setting: str
    default: Any
    help: str


def variables() -> dict[str, Variable]:
    """Every declared ``REELGATE_*`` variable, the server's and the client's, by name."""
    fields = {**Settings.model_fields, **ClientSettings.model_fields}
    return {
        _env_of(f): Variable(_env_of(f), name, f.default, f.description or "")
        for name, f in fields.items()
    }


def _field(name: str) -> FieldInfo:
    field = Settings.model_fields.get(name) or ClientSettings.model_fields.get(name)
    if field is None:
        raise KeyError(name)
    return field


def env_name(name: str) -> str:
    """The ``REELGATE_*`` variable of setting ``name`` (for messages that name a setting)."""
    return _env_of(_field(name))


def help_for(name: str) -> str:
    """``--help`` text for the flag that mirrors setting ``name``."""
    field = _field(name)
    return f"{field.description} (env: {_env_of(field)})"


def default_of(name: str) -> Any:
    """Setting ``name``'s default (None: unset, the code then decides)."""
    return _field(name).default
