"""Several processes: who is alive (heartbeats), and stored updates held by the process handling them.

A process's delivery worker and inbox processor beat in `heartbeats` about once a second; a lease
(an outbox item, an inbox row) whose holder has not beaten for a few seconds is free to take
(storage/repositories/leases.py). Inbox rows get a holder and a lease like outbox items.

Revision ID: 0004_processes
Revises: 0003
Create Date: written by hand to match storage/models.py
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_processes"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("beat_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("owner", name="pk_heartbeats"),
    )
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("claimed_until", WHEN, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
    op.drop_table("heartbeats")
