"""Topic openings: a case's forum topic is recorded before it is created and its thread id right after,
so that a crash in between leaves a row the sweep finds (bot/delivery/openings.py).

Revision ID: 0007_delivery
Revises: 0006_receipts
Create Date: written by hand to match storage/models.py
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_delivery"
down_revision: str | None = "0006_receipts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "topic_openings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("chat", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_topic_openings"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_topic_openings_case_id_target", "topic_openings", ["case_id", "target"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_topic_openings_case_id_target", "topic_openings")
    op.drop_table("topic_openings")
