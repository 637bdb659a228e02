"""The outbox's lane index holds pending items only.

Every new item and every delivery round asks "does an earlier item of this lane still wait?". With an
index over all of a lane's items, that question read the lane's whole history (a long case topic has
hundreds of sent items); over pending items only, it reads at most the few that wait.

Revision ID: 0002
Revises: 0001
Create Date: written by hand to match storage/models.py
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_ONLY = sa.text("status = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_outbox_lane_id", "outbox")
    op.create_index("ix_outbox_pending_lane", "outbox", ["lane", "id"],
                    sqlite_where=PENDING_ONLY, postgresql_where=PENDING_ONLY)


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_lane", "outbox")
    op.create_index("ix_outbox_lane_id", "outbox", ["lane", "id"])
