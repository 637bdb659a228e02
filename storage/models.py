"""The schema, as SQLAlchemy declarative models; the migration in migrations/versions mirrors it."""
from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, cast

from sqlalchemy import BigInteger, Boolean, Index, MetaData, String, Table, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import UTCDateTime

# Fixed constraint names keep migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# SQLite would reuse the largest id after a delete; audit rows outlive their case, so never reuse.
NO_REUSE = {"sqlite_autoincrement": True}
PENDING_ONLY = text("status = 'pending'")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Every datetime column goes through UTCDateTime so values come back aware on SQLite too.
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index(None, "updated_at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[bytes]
    address: Mapped[bytes | None]
    version: Mapped[int]
    updated_at: Mapped[datetime]
    created_at: Mapped[datetime]
    reports_today: Mapped[int] = mapped_column(default=0)
    reports_day: Mapped[str] = mapped_column(String(10), default="")


class CaseRow(Base):
    __tablename__ = "cases"
    __table_args__ = (Index(None, "status", "created_at"), NO_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(12), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    conversation_key: Mapped[str | None] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(64))
    age_group: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(8))
    region: Mapped[str | None] = mapped_column(String(32))  # a key of content/regions.yaml, nothing finer
    consent: Mapped[str] = mapped_column(String(16))
    reply_wanted: Mapped[bool] = mapped_column(Boolean, default=False)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(64))
    assignee_id: Mapped[int | None] = mapped_column(BigInteger)
    answers: Mapped[bytes]
    receipt_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    operator_topic_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    operator_card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    police_topic_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    police_card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    rating: Mapped[int | None]
    sla_level: Mapped[int] = mapped_column(default=0)
    checkin_due_at: Mapped[datetime | None]
    checkin_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        # "Does an earlier item of this lane still wait?" reads only waiting items (migration 0002).
        Index("ix_outbox_pending_lane", "lane", "id", sqlite_where=PENDING_ONLY, postgresql_where=PENDING_ONLY),
        NO_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    lane: Mapped[str] = mapped_column(String(100))
    conversation_key: Mapped[str | None] = mapped_column(String(64), index=True)
    case_id: Mapped[int | None] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[bytes]
    priority: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))


class InboxRow(Base):
    __tablename__ = "inbox"
    __table_args__ = (Index(None, "channel", "external_id", unique=True), Index(None, "status", "id"), NO_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    lane: Mapped[str] = mapped_column(String(100))
    payload: Mapped[bytes | None]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # The process handling a stored update holds it until then (migration 0004): see storage/repositories/leases.py.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]


class HeartbeatRow(Base):
    """One row per running process (its delivery worker and inbox processor share it): when it last beat."""

    __tablename__ = "heartbeats"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    beat_at: Mapped[datetime]


class StaffRow(Base):
    __tablename__ = "staff"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    role: Mapped[str] = mapped_column(String(16))
    alias: Mapped[str] = mapped_column(String(64))
    granted_by: Mapped[int | None] = mapped_column(BigInteger)
    granted_at: Mapped[datetime]


class AuditRow(Base):
    __tablename__ = "audit"
    __table_args__ = (NO_REUSE,)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(index=True)
    actor_alias: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class StatCountRow(Base):
    """How often one thing happened on one day to one kind of case (bot/statistics/record.py).

    A counter per combination of values, not a row per event: no id, no case, no order of events,
    nothing finer than the day. Every column is part of the key, so one upsert counts; "" stands
    for "not said" (a NULL would never match in the key) and `minutes` is -1 where there is no duration."""

    __tablename__ = "stat_counts"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    event: Mapped[str] = mapped_column(String(32), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    age_group: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    harm: Mapped[str] = mapped_column(String(64), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    urgent: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    minutes: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    count: Mapped[int]


class StatPostRow(Base):
    """A statistics post that went out for a period (the Monday figures): claimed once across processes."""

    __tablename__ = "stat_posts"

    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    posted_at: Mapped[datetime]


class ChatMessageRow(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (NO_REUSE,)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_key: Mapped[str] = mapped_column(String(64), index=True)
    message_id: Mapped[int] = mapped_column(BigInteger)
    from_bot: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(index=True)


class CaseMessageRow(Base):
    __tablename__ = "case_messages"
    __table_args__ = (Index(None, "case_id", "child_message_id"), Index(None, "chat", "staff_message_id"), NO_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int]
    child_message_id: Mapped[int | None] = mapped_column(BigInteger)
    staff_message_id: Mapped[int | None] = mapped_column(BigInteger)
    chat: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]


class CaseChatRow(Base):
    """A further chat that proved a case's receipt code (the case's own stays in cases.conversation_key)."""

    __tablename__ = "case_chats"
    __table_args__ = (Index(None, "case_id", "conversation_key", unique=True), NO_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int]
    conversation_key: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]


class ReceiptFailureRow(Base):
    """One wrong receipt code: who typed it (a keyed hash of their own, not the conversation's) and when."""

    __tablename__ = "receipt_failures"
    __table_args__ = (Index(None, "sender", "at"), NO_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(index=True)


class TopicOpeningRow(Base):
    """A case's forum topic being opened: written before Telegram is asked, given its thread id right after,
    deleted once the case holds the topic. What a crash leaves here is found by the sweep (bot/delivery/openings.py)."""

    __tablename__ = "topic_openings"
    # One opening at a time per case and staff chat: two processes never both create a case's topic.
    __table_args__ = (Index(None, "case_id", "target", unique=True), NO_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int]  # no foreign key: the row must outlive a purged case, to delete its topic
    target: Mapped[str] = mapped_column(String(16))
    chat: Mapped[int] = mapped_column(BigInteger)
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    owner: Mapped[str | None] = mapped_column(String(64))  # the process asking Telegram (bot/heartbeat.py)


def table(model: type[Base]) -> Table:
    """The Core table of a model (SQLAlchemy types `__table__` only as a FromClause)."""
    return cast(Table, model.__table__)
