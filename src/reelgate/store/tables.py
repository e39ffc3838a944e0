"""The store's tables. Migrations in ``migrations/versions`` create them; keep the two in step."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # unfinished tasks allowed at once; NULL: the server default, 0: unlimited
    Column("max_concurrent_tasks", Integer, nullable=True),
    # units the account may spend (decimal string); NULL: unlimited
    Column("unit_quota", String(40), nullable=True),
    # requests per minute per key; NULL: the server default, 0: unlimited
    Column("rate_limit", Integer, nullable=True),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key", String(64), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    # HMAC verification needs the secret itself; it is never logged or returned after creation
    Column("secret_key", String(128), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),  # sha256 hex of the key
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("prefix", String(16), nullable=False),  # first characters, to tell keys apart
    Column("name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(24), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("external_task_id", String(256), nullable=True),
    Column("model_name", String(100), nullable=False),
    Column("params", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_msg", Text, nullable=False, default=""),
    Column("progress", Integer, nullable=False, default=0),
    Column("callback_url", Text, nullable=True),
    Column("watermark", Boolean, nullable=False, default=False),
    Column("result", JSON, nullable=False),
    Column("units", String(40), nullable=False, default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    # the base URL the task was created through (links in its callbacks); NULL: unknown
    Column("base_url", Text, nullable=True),
    # why the client (or a timeout) asked a running task to stop; NULL: not asked
    Column("cancel_reason", Text, nullable=True),
    # a submitted task is not claimed before this time (Unix ms; 0: at once)
    Column("run_after", BigInteger, nullable=False, default=0, server_default="0"),
    # the first claim (submitted -> processing), for the processing timeout; NULL: not yet
    Column("started_at", BigInteger, nullable=True),
    # what the task's engine saved for later attempts (Job.checkpoint); NULL: nothing
    Column("engine_state", JSON, nullable=True),
    # upstream callbacks received for the task: a change tells its worker to poll it now
    Column("pokes", Integer, nullable=False, default=0, server_default="0"),
    UniqueConstraint("account_id", "external_task_id", name="uq_tasks_account_external"),
    Index("ix_tasks_account_created", "account_id", "created_at"),
    Index("ix_tasks_status_created", "status", "created_at"),
)

task_events = Table(
    "task_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(24), ForeignKey("tasks.task_id"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    # {"task": snapshot of the task at the change}; rows of old: the rendered callback body
    Column("payload", JSON, nullable=False),
    Column("callback_url", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # pending: to deliver; delivered; dead: gave up; none: no callback_url
    Column("delivery", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_error", Text, nullable=True),
    Index("ix_task_events_delivery_next", "delivery", "next_attempt_at"),
)

# fixed-window request counters (store/ratelimits.py): one row per key per minute
rate_windows = Table(
    "rate_windows",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("window", BigInteger, primary_key=True),  # Unix minute
    Column("count", Integer, nullable=False),
)

# The sandbox's own state (store/sandbox.py): scenarios that fired, control signals.
sandbox_fired = Table(
    "sandbox_fired",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scenario", String(100), nullable=False, index=True),
    Column("account_id", Integer, nullable=False),
    Column("task_id", String(24), nullable=True),  # NULL: refused at create
    Column("external_task_id", String(256), nullable=True),
    Column("outcome", Text, nullable=False),  # "applied", or "refused <code>"
    Column("created_at", BigInteger, nullable=False),
)

sandbox_signals = Table(
    "sandbox_signals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(24), nullable=True, index=True),  # NULL: every task (the clock)
    Column("kind", String(16), nullable=False),  # release, finish, advance
    Column("seconds", Float, nullable=False, default=0.0),
    Column("created_at", BigInteger, nullable=False),
)
