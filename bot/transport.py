"""What a channel's transport does for the delivery, and how it says what went wrong.

A transport turns one call into platform requests and answers with what happened (the ids of the
messages it sent, a new topic's id) or a `SendError` naming a `Failure`. It never reads or writes the
database: recording what happened and queuing what follows is the delivery's job (bot/delivery/).
Each channel maps its own platform's errors to `Failure` inside its adapter.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from dialogs.model import Button, MediaRef
from dialogs.render import split_text

Rows = tuple[tuple[Button, ...], ...]
Pace = Callable[[], Awaitable[None]]  # awaited before each further platform call of one item
ADDRESS_KEYS = ("chat_id", "viber_id", "console")


class Failure(StrEnum):
    """Why a platform did not take a message; the retry policy (bot/delivery/policy.py) decides what next."""

    RATE_LIMITED = "rate_limited"  # the platform asked to wait `retry_after` seconds
    SERVER = "server"  # the platform's own trouble (5xx)
    NETWORK = "network"  # no answer: timeout, connection refused, DNS
    RECIPIENT_GONE = "recipient_gone"  # the child blocked the bot, left, or their chat is gone
    REFUSED = "refused"  # the platform refused this very message (bad request: a wrong file, too long)
    NO_ACCESS = "no_access"  # the bot cannot write to a staff chat (removed, or lost its rights)
    TOPIC_GONE = "topic_gone"  # staff deleted the case's forum topic
    TOPIC_CLOSED = "topic_closed"  # staff closed the case's forum topic
    CHAT_MOVED = "chat_moved"  # the group became a supergroup with a new id (`new_chat_id`)
    UNKNOWN = "unknown"  # anything else (a bug): retried with back-off


class SendError(Exception):
    """A transport's failure. `reason` is stored and logged: never message text or a platform id."""

    def __init__(self, failure: Failure, reason: str = "", *, retry_after: float | None = None,
                 new_chat_id: int | None = None) -> None:
        super().__init__(reason or failure.value)
        self.failure = failure
        self.reason = reason or failure.value
        self.retry_after = retry_after
        self.new_chat_id = new_chat_id


@dataclass(frozen=True, slots=True)
class Address:
    """Where a message goes: a chat (a Telegram chat id, a Viber user id) and, in a forum, a topic."""

    chat: int | str
    topic: int | None = None

    @classmethod
    def of_child(cls, stored: dict[str, Any] | None) -> Address | None:
        """A child's stored address as its channel wrote it ({"chat_id": …} in Telegram, {"viber_id": …}
        in Viber, {"console": true} in the console); None once the child erased it."""
        for key in ADDRESS_KEYS:
            value = (stored or {}).get(key)
            if value not in (None, "", False):
                return cls(value if key != "console" else "console")
        return None


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    """A child's file for a staff chat, and the neutral name it goes under there ("file-2": the
    transport adds the extension): never the name the child's phone gave it (rule 1)."""

    media: MediaRef
    name: str


@dataclass(frozen=True, slots=True)
class StaffFile:
    """A file a staff member sent in a case topic, to be passed on to the child."""

    chat: int  # the staff chat it was sent in
    message_id: int
    media: MediaRef


class Transport(Protocol):
    """One channel's way of sending. Child chats need the first four; staff chats (Telegram, the
    console) all of them. `can_delete` is False where the platform cannot delete messages (Viber);
    `text_limit` is the longest text one message may carry (longer ones are split by the caller)."""

    can_delete: bool
    text_limit: int

    async def send_text(self, to: Address, text: str, buttons: Rows = (), *, protect: bool = False) -> list[int]:
        """Send one text message, links never previewed; its id."""
        ...

    async def send_files(self, to: Address, files: Sequence[OutgoingFile], caption: str | None = None, *,
                         protect: bool = False) -> list[int]:
        """A file, or several as one album; pictures under a spoiler where the platform has one;
        documents under their neutral names, pictures among them without their metadata."""
        ...

    async def pass_on(self, to: Address, file: StaffFile, caption: str, unavailable: str, pace: Pace) -> list[int]:
        """A staff member's file to a child; `unavailable` is said instead if the file cannot be had."""
        ...

    async def delete_messages(self, to: Address, message_ids: Sequence[int]) -> None:
        """Delete the bot's and the child's messages where the platform allows (best effort)."""
        ...

    async def send_picture(self, to: Address, picture: bytes, name: str, caption: str) -> list[int]:
        """A picture the bot made (a chart), with its caption."""
        ...

    async def edit_text(self, to: Address, message_id: int, text: str, buttons: Rows = ()) -> None:
        """Change a message in place (a case card); unchanged text is not an error."""
        ...

    async def open_topic(self, chat: int, name: str) -> int:
        """Create a forum topic; its id."""
        ...

    async def reopen_topic(self, chat: int, topic: int) -> None:
        ...

    async def delete_topic(self, chat: int, topic: int) -> None:
        """Delete a forum topic and everything in it (one already gone is not an error)."""
        ...


async def send_long_text(transport: Transport, to: Address, text: str, buttons: Rows = (), *,
                         protect: bool = False, pace: Pace | None = None) -> list[int]:
    """A text of any length as one or more messages within the transport's limit, cut at line ends
    where possible; the buttons go with the last part. `pace` is awaited before each further part."""
    parts = split_text(text, transport.text_limit)
    ids: list[int] = []
    for index, part in enumerate(parts):
        if index and pace is not None:
            await pace()
        last = index == len(parts) - 1
        ids += await transport.send_text(to, part, buttons if last else (), protect=protect)
    return ids
