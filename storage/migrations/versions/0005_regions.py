"""Regions: a case keeps the region the child named (a key of content/regions.yaml), nothing finer.

Revision ID: 0005_regions
Revises: 0004_processes
Create Date: written by hand to match storage/models.py
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_regions"
down_revision: str | None = "0004_processes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("region", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("region")
