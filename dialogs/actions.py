"""What the engine asks the service to do, and the results the service feeds back to it as events."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dialogs.model import MediaRef, Say, State


class UrgentReason(StrEnum):
    DANGER_WORDS = "danger_words"  # the child typed words of danger or self-harm
    SAID_NOT_SAFE = "said_not_safe"  # the child answered "No" to "Are you safe right now?"


@dataclass(frozen=True, slots=True)
class SubmitCase:
    """Store the consented report as a case (and queue it for the operator chat); answer with
    CaseSubmitted or SubmitRefused."""

    kind: str
    answers: dict[str, Any]
    media: tuple[MediaRef, ...]
    consent: str
    reply_wanted: bool
    urgent: bool
    language: str
    region: str | None = None  # a key of content/regions.yaml, only if the child named one


@dataclass(frozen=True, slots=True)
class RelayToCase:
    """Pass a message the child wrote to the counsellor of that open case."""

    case_number: str
    text: str = ""
    media: MediaRef | None = None
    edited: bool = False


@dataclass(frozen=True, slots=True)
class FlagUrgent:
    """The child's open cases (if any) become urgent, and staff are told why."""

    reason: UrgentReason


@dataclass(frozen=True, slots=True)
class UrgentWithdrawn:
    """The child said the bot misunderstood their words of danger: staff are told."""


@dataclass(frozen=True, slots=True)
class Forget:
    """Delete everything that links this child to the service."""


@dataclass(frozen=True, slots=True)
class QuickExit:
    """Remove the conversation from the child's screen where the platform allows."""


@dataclass(frozen=True, slots=True)
class DeleteIncoming:
    """Delete the child's last message from the chat (an image that must not be kept)."""


@dataclass(frozen=True, slots=True)
class Reconnect:
    """The child typed a receipt code: check it; answer with ReceiptChecked."""

    code: str


@dataclass(frozen=True, slots=True)
class Disown:
    """The child says it wasn't them who opened their report in another chat: that chat is cut off, staff alerted."""

    case_number: str


@dataclass(frozen=True, slots=True)
class RateCase:
    score: int
    case_number: str | None = None  # None: the child's latest case (buttons sent before numbers were added)


@dataclass(frozen=True, slots=True)
class ConvertCase:
    """The child answered the counsellor's question whether their question may become a report."""

    agreed: bool
    case_number: str | None = None  # None: the child's newest open question


Action = (Say | SubmitCase | RelayToCase | FlagUrgent | UrgentWithdrawn | Forget | QuickExit | DeleteIncoming
          | Reconnect | Disown | RateCase | ConvertCase)


# -- results the service feeds back ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseSubmitted:
    """The case exists: its number and the receipt code (said to the child once, never stored)."""

    case_number: str
    receipt_code: str


@dataclass(frozen=True, slots=True)
class SubmitRefused:
    """Too many reports today: nothing was stored; the draft stays."""


class ReceiptOutcome(StrEnum):
    FOUND = "found"  # this chat is now connected to the case too (its earlier chats were told)
    ALREADY_HERE = "already_here"  # the case already belonged to this chat
    NOT_FOUND = "not_found"  # a wrong code: counted
    CHECK_CODE = "check_code"  # not a code as we make them (a typo, its check digit fails): not counted
    TOO_MANY = "too_many"  # too many wrong codes from this sender today: not even checked
    PAUSED = "paused"  # too many wrong codes from everyone this hour: receipt entry pauses


@dataclass(frozen=True, slots=True)
class ReceiptChecked:
    outcome: ReceiptOutcome
    case_number: str | None = None


ServiceEvent = CaseSubmitted | SubmitRefused | ReceiptChecked


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    actions: tuple[Action, ...]
