"""Statistics recorded as cases move: day counters by coarse values, and the posts already made.

The one row per case that the retention purge wrote (`case_stats`) is replaced: figures are now
counted when things happen (bot/statistics/record.py), so nothing waits for a purge to be counted.

Revision ID: 0003
Revises: 0002
Create Date: written by hand to match storage/models.py
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)
KEY = ("day", "event", "region", "channel", "language", "age_group", "kind", "harm", "outcome", "urgent", "minutes")


def upgrade() -> None:
    op.create_table(
        "stat_counts",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("age_group", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("harm", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_stat_counts"),
    )
    op.create_table(
        "stat_posts",
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("posted_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("period", name="pk_stat_posts"),
    )
    op.drop_index("ix_case_stats_created_day", "case_stats")
    op.drop_table("case_stats")


def downgrade() -> None:
    op.create_table(
        "case_stats",
        sa.Column("id", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("age_group", sa.String(16), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("country", sa.String(8), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("consent", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("created_day", sa.String(10), nullable=False),
        sa.Column("closed_day", sa.String(10), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_case_stats_created_day", "case_stats", ["created_day"])
    op.drop_table("stat_posts")
    op.drop_table("stat_counts")
