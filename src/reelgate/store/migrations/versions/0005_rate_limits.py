"""Per-key request rates: an account's limit, and fixed-window counters shared by replicas.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("rate_limit", sa.Integer, nullable=True))
    op.create_table(
        "rate_windows",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("window", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_windows")
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of accounts would trip the tasks' foreign key.
    op.drop_column("accounts", "rate_limit")
