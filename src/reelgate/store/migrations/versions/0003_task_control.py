"""Task control: cancel requests, time in ``submitted``, and when processing began.

``cancel_reason``: set when a client asked to cancel a running task (the worker holding it
reads it with its heartbeat); ``run_after``: a ``submitted`` task is not claimed before this
time (Unix ms, 0: at once); ``started_at``: the first claim, for the processing timeout.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("cancel_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("run_after", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("started_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of tasks would trip task_events' foreign key.
    for column in ("started_at", "run_after", "cancel_reason"):
        op.drop_column("tasks", column)
