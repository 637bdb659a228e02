"""Receipts that cannot be guessed or taken over: the chats that proved a case's code, and wrong codes
counted per sender and overall in a table the child's /forget does not reset.

Revision ID: 0006_receipts
Revises: 0005_regions
Create Date: written by hand to match storage/models.py
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_receipts"
down_revision: str | None = "0005_regions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)
NO_REUSE = {"sqlite_autoincrement": True}


def upgrade() -> None:
    op.create_table(
        "case_chats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("conversation_key", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_chats"),
        **NO_REUSE,
    )
    op.create_index("ix_case_chats_case_id_conversation_key", "case_chats", ["case_id", "conversation_key"],
                    unique=True)
    op.create_index("ix_case_chats_conversation_key", "case_chats", ["conversation_key"])
    op.create_table(
        "receipt_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_receipt_failures"),
        **NO_REUSE,
    )
    op.create_index("ix_receipt_failures_sender_at", "receipt_failures", ["sender", "at"])
    op.create_index("ix_receipt_failures_at", "receipt_failures", ["at"])


def downgrade() -> None:
    op.drop_table("receipt_failures")
    op.drop_table("case_chats")
