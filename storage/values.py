"""Closed sets of values stored in text columns, and the KEEP sentinel."""
from __future__ import annotations

from enum import Enum, IntEnum, StrEnum
from typing import Final


class CaseKind(StrEnum):
    """What the child came for."""

    REPORT = "report"
    CONSULTATION = "consultation"
    LINK = "link"


class CaseStatus(StrEnum):
    """Where a case is in its life."""

    NEW = "new"
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    CLOSED = "closed"
    SPAM = "spam"


# A case in one of these states is finished: no check-in, not "open" for the child.
FINISHED: Final = frozenset({CaseStatus.CLOSED, CaseStatus.SPAM})


class Consent(StrEnum):
    """Who the child allowed to see the report."""

    COUNSELLOR = "counsellor"
    POLICE = "police"


class ChannelName(StrEnum):
    """Where a child writes from; staff always work in Telegram (the console plays both locally)."""

    TELEGRAM = "telegram"
    VIBER = "viber"
    CONSOLE = "console"


class Kind(StrEnum):
    """What an outbox item is; its payload's shape follows from it (bot/outbox.py)."""

    # to a child
    SAY = "say"  # {text, buttons, address?}
    DELETE_MESSAGES = "delete_messages"  # {message_ids, lang}
    STAFF_TEXT = "staff_text"  # {case_id, role, text}
    STAFF_COPY = "staff_copy"  # {case_id, chat, message_id, kind, file_ref, caption}
    # to a staff chat
    CASE_CARD = "case_card"  # {case_id}: opens the topic if needed and sends the card
    CARD_PART = "card_part"  # {case_id, text}: the rest of a card too long for one message
    CASE_FILES = "case_files"  # {case_id, files}: the child's screenshots (an album) or a voice note
    CARD_UPDATE = "card_update"  # {case_id}: edits the card in place
    RELAY = "relay"  # {case_id, text, media, edited, child_message_id}
    NOTICE = "notice"  # {case_id, key, slots}
    GENERAL = "general"  # {key, slots}: a line in the chat's General topic (digest, SLA alarm)
    GENERAL_PHOTO = "general_photo"  # {caption, photo?}: a picture in General (the Monday figures; base64 PNG)
    DELETE_TOPIC = "delete_topic"  # {topic_id}


class Outcome(StrEnum):
    """How staff closed a case."""

    ADVICE = "advice"
    REFERRED = "referred"
    ESCALATED = "escalated"
    NO_ANSWER = "no_answer"
    SPAM = "spam"


class OutboxStatus(StrEnum):
    """Delivery state of an outgoing message."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class InboxStatus(StrEnum):
    """Processing state of a received update."""

    PENDING = "pending"
    DONE = "done"
    PARKED = "parked"


class Target(StrEnum):
    """Who an outgoing message is for; also names the chat of a relayed message."""

    CHILD = "child"
    OPERATOR = "operator"
    POLICE = "police"


class Role(StrEnum):
    """What a staff member may do."""

    ADMIN = "admin"
    MODERATOR = "moderator"
    COUNSELLOR = "counsellor"
    POLICE = "police"
    COORDINATOR = "coordinator"  # reads statistics; never a case


class StatEvent(StrEnum):
    """What the statistics count: a step of the funnel or of a case's life (bot/statistics/record.py)."""

    CONVERSATION_STARTED = "conversation_started"
    REPORT_BEGUN = "report_begun"
    CASE_SUBMITTED = "case_submitted"  # reports sent, questions asked and links reported, by kind
    POLICE_CONSENT = "police_consent"
    CASE_ACCEPTED = "case_accepted"  # with the minutes from consent
    CASE_TAKEN = "case_taken"
    FIRST_ANSWER = "first_answer"  # with the minutes from consent
    ESCALATED = "escalated"
    CASE_CLOSED = "case_closed"  # by outcome, with the minutes from consent
    SPAM = "spam"
    CHECKIN_SENT = "checkin_sent"
    CHECKIN_ANSWERED = "checkin_answered"
    RATED = "rated"  # the rating is the outcome


class Priority(IntEnum):
    """Outbox priority: lower is sent first."""

    URGENT = 0
    NORMAL = 1
    LOW = 2


class Keep(Enum):
    """Type of KEEP, a sentinel meaning 'leave this column as it is' (an enum so type checkers narrow it)."""

    KEEP = "keep"

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = Keep.KEEP
