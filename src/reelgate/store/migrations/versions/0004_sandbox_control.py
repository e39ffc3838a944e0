"""The sandbox's control tables: scenarios that fired, and signals for running tasks.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sandbox_fired",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scenario", sa.String(100), nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("task_id", sa.String(24), nullable=True),
        sa.Column("external_task_id", sa.String(256), nullable=True),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sandbox_fired_scenario", "sandbox_fired", ["scenario"])
    op.create_table(
        "sandbox_signals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(24), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sandbox_signals_task_id", "sandbox_signals", ["task_id"])


def downgrade() -> None:
    op.drop_table("sandbox_signals")
    op.drop_table("sandbox_fired")
