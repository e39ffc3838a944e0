"""Engine state: what an engine saved for a task between attempts (the upstream engine's
submission record), so a reclaimed task resumes instead of starting over; and ``pokes``, a
count of the upstream's callbacks for the task (the worker holding it polls at once).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("engine_state", sa.JSON, nullable=True))
        batch.add_column(sa.Column("pokes", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of tasks would trip task_events' foreign key.
    for column in ("pokes", "engine_state"):
        op.drop_column("tasks", column)
