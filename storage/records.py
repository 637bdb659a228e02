"""What repositories return: frozen values, decrypted, never ORM rows."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from storage.values import CaseKind, CaseStatus, InboxStatus, Kind, OutboxStatus, Role, StatEvent, Target


@dataclass(frozen=True, slots=True)
class Conversation:
    """One child's dialog state on one channel, known only by its pseudonym key."""

    key: str
    channel: str
    state: dict[str, Any]
    address: dict[str, Any] | None
    version: int
    updated_at: datetime
    created_at: datetime
    reports_today: int
    reports_day: str


@dataclass(frozen=True, slots=True)
class MarkedSent:
    """An outbox item recorded as sent, and whether another item of its lane waits behind it."""

    lane_waits: bool


@dataclass(frozen=True, slots=True)
class StaffTopic:
    """A case's forum topic in one staff chat, and the card that opens it (None: not there yet)."""

    topic_id: int | None
    card_message_id: int | None


@dataclass(frozen=True, slots=True)
class Case:
    """A report, consultation or link case; `answers` is everything the child said."""

    id: int
    number: str
    kind: CaseKind
    status: CaseStatus
    conversation_key: str | None
    channel: str
    category: str | None
    age_group: str | None
    language: str
    country: str
    consent: str
    reply_wanted: bool
    urgent: bool
    outcome: str | None
    assignee_id: int | None
    answers: dict[str, Any]
    receipt_hash: str | None
    operator_topic_id: int | None
    operator_card_message_id: int | None
    police_topic_id: int | None
    police_card_message_id: int | None
    rating: int | None
    sla_level: int
    checkin_due_at: datetime | None
    checkin_sent: bool
    created_at: datetime
    updated_at: datetime
    accepted_at: datetime | None
    closed_at: datetime | None
    region: str | None = None  # a key of content/regions.yaml (None: not said, another place)

    def topic(self, target: Target) -> StaffTopic:
        """The case's topic in the operator or the police chat."""
        if target is Target.POLICE:
            return StaffTopic(self.police_topic_id, self.police_card_message_id)
        return StaffTopic(self.operator_topic_id, self.operator_card_message_id)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One message waiting to leave (or that left) through a channel."""

    id: int
    target: Target
    channel: str
    lane: str
    conversation_key: str | None
    case_id: int | None
    kind: Kind
    payload: dict[str, Any]
    priority: int
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    result: dict[str, Any] | None
    error: str | None
    claimed_until: datetime | None
    claimed_by: str | None
    # A child's address, read with the claim (`Outbox.ready`) so that the sender need not read the
    # conversation; never written to the outbox, and left out of repr and comparisons.
    address: dict[str, Any] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One received platform update; payload is None once processed."""

    id: int
    channel: str
    external_id: str
    lane: str
    payload: dict[str, Any] | None
    status: InboxStatus
    attempts: int
    received_at: datetime
    done_at: datetime | None
    error: str | None
    claimed_by: str | None = None
    claimed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A counsellor, moderator, admin or police officer (a Telegram user id, not a child)."""

    user_id: int
    role: Role
    alias: str
    granted_by: int | None
    granted_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One staff action on a case."""

    id: int
    case_id: int | None
    actor_alias: str
    actor_id: int | None
    action: str
    detail: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class StatCount:
    """How often `event` happened on `day` with these values; None is "not said"."""

    day: date
    event: StatEvent
    region: str | None
    channel: str | None
    language: str | None
    age_group: str | None
    kind: str | None
    harm: str | None
    outcome: str | None
    urgent: bool
    minutes: int | None  # the duration it took (CASE_ACCEPTED, FIRST_ANSWER, CASE_CLOSED), else None
    count: int


@dataclass(frozen=True, slots=True)
class CaseMessage:
    """Links a message relayed between a child and staff, for edits and reply routing."""

    id: int
    case_id: int
    child_message_id: int | None
    staff_message_id: int | None
    chat: Target
    at: datetime
