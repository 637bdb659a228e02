"""Values the engine takes and returns: events in, state and actions out. No I/O here."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    COMMAND = "command"  # text holds the command name, e.g. "start"
    BUTTON = "button"  # text holds the button payload
    TEXT = "text"
    MEDIA = "media"  # a picture, video, document, voice note, audio or GIF
    UNSUPPORTED = "unsupported"  # sticker, location, contact, poll… (media.kind names it)
    EDIT = "edit"  # an edited earlier message; text holds the new text


class MediaKind(StrEnum):
    PHOTO = "photo"
    VIDEO = "video"
    DOCUMENT = "document"
    VOICE = "voice"
    AUDIO = "audio"
    ANIMATION = "animation"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"
    POLL = "poll"
    OTHER = "other"


IMAGE_KINDS = frozenset({MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.DOCUMENT, MediaKind.ANIMATION})


@dataclass(frozen=True, slots=True)
class MediaRef:
    """Where a child's file can be found again on its platform (never the file itself)."""

    kind: MediaKind
    file_ref: str = ""  # Telegram file_id or Viber media URL
    message_id: int | None = None  # the child's message, for copyMessage
    group: str | None = None  # Telegram media_group_id: an album's pictures travel together

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, "")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaRef:
        return cls(MediaKind(data["kind"]), data.get("file_ref", ""), data.get("message_id"), data.get("group"))


@dataclass(frozen=True, slots=True)
class Incoming:
    """One thing the child did."""

    kind: EventKind
    text: str = ""
    media: MediaRef | None = None
    language_hint: str | None = None  # the platform's language code, used for a new child


@dataclass(frozen=True, slots=True)
class OpenCase:
    """What the engine may know of the child's open case (read-only context)."""

    number: str
    status: str
    reply_wanted: bool
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    open_case: OpenCase | None = None
    online: bool = True  # a counsellor is on duty now (office hours, computed by the service)


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class Say:
    """Send this text with these button rows. `{case_number}`-style slots are the service's to fill."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class SubmitCase:
    """Store the consented report as a case (and queue it for the operator chat)."""

    kind: str
    answers: dict[str, Any]
    media: tuple[MediaRef, ...]
    consent: str
    reply_wanted: bool
    urgent: bool
    language: str


@dataclass(frozen=True, slots=True)
class RelayToCase:
    """Pass a message the child wrote to the counsellor of their open case."""

    text: str = ""
    media: MediaRef | None = None
    edited: bool = False


@dataclass(frozen=True, slots=True)
class FlagUrgent:
    """Danger was named: the open case (if any) becomes urgent."""


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
    """The child typed a receipt code: link them to that case if it matches."""

    code: str


@dataclass(frozen=True, slots=True)
class RateCase:
    score: int


@dataclass(frozen=True, slots=True)
class ConvertCase:
    """The child answered the counsellor's question whether their question may become a report."""

    agreed: bool


Action = (Say | SubmitCase | RelayToCase | FlagUrgent | Forget | QuickExit | DeleteIncoming | Reconnect | RateCase
          | ConvertCase)


@dataclass(slots=True)
class State:
    """A conversation as stored between events (serialised to JSON, encrypted at rest)."""

    lang: str
    step: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    media: list[dict[str, Any]] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    resume: str | None = None
    urgent: bool = False
    expired: bool = False  # the draft was deleted after DRAFT_TTL_HOURS; said once on return
    receipt_failures: list[str] = field(default_factory=list)  # days of wrong receipt codes (guessing)

    @property
    def has_draft(self) -> bool:
        return bool(self.answers or self.media)

    def clear_draft(self) -> None:
        self.answers.clear()
        self.media.clear()
        self.history.clear()
        self.resume = None

    def to_dict(self) -> dict[str, Any]:
        # A state holds JSON values only: a JSON round trip copies them deeply, in C, several times
        # faster than dataclasses.asdict (this runs on every step).
        return json.loads(json.dumps({name: getattr(self, name) for name in self.__dataclass_fields__}))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def copy(self) -> State:
        """A deep copy."""
        return State.from_dict(self.to_dict())


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    actions: tuple[Action, ...]
