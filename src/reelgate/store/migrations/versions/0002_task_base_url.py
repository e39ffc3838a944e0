"""The base URL each task was created through, for the links in its callbacks.

Outbox events now hold a snapshot of the status change instead of a rendered body; rows
written before keep their body and are still delivered as they are (no data migration).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("base_url", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("base_url")
