"""Viber messages as engine events, the same way handlers/telegram/convert.py maps Telegram's.

Viber has no callback buttons: a keyboard press arrives as an ordinary text message carrying the
button's ActionBody, so a text that parses as an engine payload ("o1|step|token") is a BUTTON.
"""
from __future__ import annotations

from typing import Any

from viberbot.api import messages
from viberbot.api.messages import FileMessage, PictureMessage, TextMessage, URLMessage, VideoMessage

from bot.conversation import Child
from dialogs.payloads import parse_payload
from dialogs.model import EventKind, Incoming, MediaKind, MediaRef
from storage import ChannelName

UNSUPPORTED = {"sticker": MediaKind.STICKER, "location": MediaKind.LOCATION, "contact": MediaKind.CONTACT}
MEDIA = ((PictureMessage, MediaKind.PHOTO), (VideoMessage, MediaKind.VIDEO), (FileMessage, MediaKind.DOCUMENT))


def message_event(message: dict[str, Any], language_hint: str | None = None) -> Incoming:
    """One Viber `message` object (the webhook's "message" field) as an engine event."""
    kind = message.get("type")
    try:
        parsed = messages.get_message(message)
    except Exception:  # noqa: BLE001 — viberbot raises a bare Exception for types it does not know
        parsed = None
    if isinstance(parsed, TextMessage):
        return text_event(parsed.text or "", language_hint)
    if isinstance(parsed, URLMessage) and parsed.media:
        # A message that is only a link (e.g. the profile of whoever hurts the child): kept as text,
        # never refused, so a link given as an answer is not lost.
        return Incoming(EventKind.TEXT, text=str(parsed.media), language_hint=language_hint)
    for cls, media_kind in MEDIA:
        if isinstance(parsed, cls) and parsed.media:
            caption = message.get("text") or ""
            return Incoming(EventKind.MEDIA, text=caption, media=MediaRef(media_kind, str(parsed.media)),
                            language_hint=language_hint)
    return Incoming(EventKind.UNSUPPORTED, media=MediaRef(UNSUPPORTED.get(kind, MediaKind.OTHER)),
                    language_hint=language_hint)


def text_event(text: str, language_hint: str | None = None) -> Incoming:
    if parse_payload(text) is not None:
        return Incoming(EventKind.BUTTON, text=text, language_hint=language_hint)
    if text.startswith("/"):
        command = text[1:].split(maxsplit=1)[0].split("@")[0].lower() if len(text.strip()) > 1 else ""
        return Incoming(EventKind.COMMAND, text=command, language_hint=language_hint)
    return Incoming(EventKind.TEXT, text=text, language_hint=language_hint)


def child_of(payload: dict[str, Any]) -> Child | None:
    """Who sent a stored Viber event, if it was a child's message (to tell them of one that was lost)."""
    if payload.get("event") != "message" or not payload.get("user_id"):
        return None
    user_id = payload["user_id"]
    return Child(ChannelName.VIBER, user_id, {"viber_id": user_id})
