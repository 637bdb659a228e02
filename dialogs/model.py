"""Values the engine takes and keeps: what the child did, what it may know of their cases, the state."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any


# The answers key of words of danger typed in a report where they answered no question (shown to staff).
DANGER_NOTE = "danger_words"

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


MAX_SCREENSHOTS = 10  # files one report keeps; more get a kind answer and are not kept (README, Security)
IMAGE_KINDS = frozenset({MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.DOCUMENT, MediaKind.ANIMATION})
SPOKEN_KINDS = frozenset({MediaKind.VOICE, MediaKind.AUDIO})


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


class NewsKind(StrEnum):
    """The last thing that happened to a case, as the child's list of reports tells it."""

    SENT = "sent"  # nothing yet since the child sent it
    CHANGE = "change"  # staff changed something (took it, passed it on…)
    MESSAGE = "message"  # a counsellor or police officer wrote to the child


@dataclass(frozen=True, slots=True)
class OpenCase:
    """What the engine may know of one of the child's open cases (read-only context)."""

    number: str
    status: str
    reply_wanted: bool
    category: str | None = None
    kind: str = "report"
    news: NewsKind = NewsKind.SENT
    news_on: date | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What the service knows at this moment and the engine may read."""

    open_cases: tuple[OpenCase, ...] = ()  # oldest first
    online: bool = True  # a counsellor is on duty now (office hours, computed by the service)
    online_in: tuple[tuple[str, bool], ...] = ()  # the same, by region, in regions with office hours of their own

    def case(self, number: str | None) -> OpenCase | None:
        """The open case with that number; else the newest open case (None if there is none)."""
        for case in self.open_cases:
            if case.number == number:
                return case
        return self.open_cases[-1] if self.open_cases else None


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class Say:
    """Send this text with these button rows: complete, nothing left for anyone to fill in."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()


@dataclass(slots=True)
class State:
    """A conversation as stored between events (serialised to JSON, encrypted at rest)."""

    lang: str
    step: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    media: list[dict[str, Any]] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    resume: str | None = None  # where the half-told report continues
    return_to: str | None = None  # the step the child was on when words of danger took them to the crisis screen
    restart_at: str | None = None  # where the child was heading when asked whether to continue their report
    case: str | None = None  # the open case the child's messages go to (picked, sent or reconnected last)
    last_album: str | None = None  # an album is acknowledged once, not once per picture
    urgent: bool = False
    expired: bool = False  # the draft was deleted after DRAFT_TTL_HOURS; said once on return
    region: str | None = None  # where the child said they live (a region key, elsewhere, unsaid): asked once

    @property
    def has_draft(self) -> bool:
        """Something of a report is kept (words of danger noted alone are no report yet)."""
        return bool(self.media) or any(key != DANGER_NOTE for key in self.answers)

    def clear_draft(self) -> None:
        self.answers.clear()
        self.media.clear()
        self.history.clear()
        self.resume = self.restart_at = None

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
