"""Initial schema: conversations, cases, outbox, inbox, staff, audit, case_stats, chat and case messages.

Revision ID: 0001
Revises:
Create Date: written by hand to match storage/models.py
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types: a migration must not change when models.py does.
WHEN = sa.DateTime(timezone=True)
NO_REUSE = {"sqlite_autoincrement": True}


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Integer(), primary_key=True, nullable=False)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("address", sa.LargeBinary(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("reports_today", sa.Integer(), nullable=False),
        sa.Column("reports_day", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_conversations"),
    )
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])

    op.create_table(
        "cases",
        _id(),
        sa.Column("number", sa.String(12), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("conversation_key", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("age_group", sa.String(16), nullable=True),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("country", sa.String(8), nullable=False),
        sa.Column("consent", sa.String(16), nullable=False),
        sa.Column("reply_wanted", sa.Boolean(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.Column("assignee_id", sa.BigInteger(), nullable=True),
        sa.Column("answers", sa.LargeBinary(), nullable=False),
        sa.Column("receipt_hash", sa.String(64), nullable=True),
        sa.Column("operator_topic_id", sa.BigInteger(), nullable=True),
        sa.Column("operator_card_message_id", sa.BigInteger(), nullable=True),
        sa.Column("police_topic_id", sa.BigInteger(), nullable=True),
        sa.Column("police_card_message_id", sa.BigInteger(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("sla_level", sa.Integer(), nullable=False),
        sa.Column("checkin_due_at", WHEN, nullable=True),
        sa.Column("checkin_sent", sa.Boolean(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("accepted_at", WHEN, nullable=True),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.UniqueConstraint("number", name="uq_cases_number"),
        **NO_REUSE,
    )
    op.create_index("ix_cases_status_created_at", "cases", ["status", "created_at"])
    op.create_index("ix_cases_conversation_key", "cases", ["conversation_key"])
    op.create_index("ix_cases_receipt_hash", "cases", ["receipt_hash"])
    op.create_index("ix_cases_operator_topic_id", "cases", ["operator_topic_id"])
    op.create_index("ix_cases_police_topic_id", "cases", ["police_topic_id"])

    op.create_table(
        "outbox",
        _id(),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("lane", sa.String(100), nullable=False),
        sa.Column("conversation_key", sa.String(64), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("sent_at", WHEN, nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_until", WHEN, nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        **NO_REUSE,
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_lane_id", "outbox", ["lane", "id"])
    op.create_index("ix_outbox_conversation_key", "outbox", ["conversation_key"])
    op.create_index("ix_outbox_case_id", "outbox", ["case_id"])

    op.create_table(
        "inbox",
        _id(),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("lane", sa.String(100), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", WHEN, nullable=False),
        sa.Column("done_at", WHEN, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        **NO_REUSE,
    )
    op.create_index("ix_inbox_channel_external_id", "inbox", ["channel", "external_id"], unique=True)
    op.create_index("ix_inbox_status_id", "inbox", ["status", "id"])

    op.create_table(
        "staff",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("granted_by", sa.BigInteger(), nullable=True),
        sa.Column("granted_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_staff"),
    )

    op.create_table(
        "audit",
        _id(),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("actor_alias", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", WHEN, nullable=False),
        **NO_REUSE,
    )
    op.create_index("ix_audit_case_id", "audit", ["case_id"])

    op.create_table(
        "case_stats",
        _id(),
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
        **NO_REUSE,
    )
    op.create_index("ix_case_stats_created_day", "case_stats", ["created_day"])

    op.create_table(
        "chat_messages",
        _id(),
        sa.Column("conversation_key", sa.String(64), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("from_bot", sa.Boolean(), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        **NO_REUSE,
    )
    op.create_index("ix_chat_messages_conversation_key", "chat_messages", ["conversation_key"])
    op.create_index("ix_chat_messages_at", "chat_messages", ["at"])

    op.create_table(
        "case_messages",
        _id(),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("child_message_id", sa.BigInteger(), nullable=True),
        sa.Column("staff_message_id", sa.BigInteger(), nullable=True),
        sa.Column("chat", sa.String(16), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        **NO_REUSE,
    )
    op.create_index("ix_case_messages_case_id_child_message_id", "case_messages", ["case_id", "child_message_id"])
    op.create_index("ix_case_messages_chat_staff_message_id", "case_messages", ["chat", "staff_message_id"])


def downgrade() -> None:
    for table in (
        "case_messages", "chat_messages", "case_stats", "audit", "staff", "inbox", "outbox", "cases", "conversations"
    ):
        op.drop_table(table)
