"""Telegram messages as engine events: what kind of thing the child sent, and where to find it again."""
from __future__ import annotations

from aiogram.types import Message

from dialogs.model import EventKind, Incoming, MediaKind, MediaRef

UNSUPPORTED = {
    "sticker": MediaKind.STICKER, "location": MediaKind.LOCATION, "venue": MediaKind.LOCATION,
    "contact": MediaKind.CONTACT, "poll": MediaKind.POLL, "dice": MediaKind.OTHER, "game": MediaKind.OTHER,
    "video_note": MediaKind.OTHER, "story": MediaKind.OTHER, "paid_media": MediaKind.OTHER,
}


def message_event(message: Message, edited: bool = False) -> Incoming:
    hint = message.from_user.language_code if message.from_user else None
    text = message.text or message.caption or ""
    if edited:
        return Incoming(EventKind.EDIT, text=text, language_hint=hint)
    if message.text is not None:
        return text_event(message.text, hint)
    media = media_ref(message)
    if media is not None:
        return Incoming(EventKind.MEDIA, text=text, media=media, language_hint=hint)
    kind = next((kind for name, kind in UNSUPPORTED.items() if getattr(message, name, None)), MediaKind.OTHER)
    return Incoming(EventKind.UNSUPPORTED, media=MediaRef(kind), language_hint=hint)


def text_event(text: str, language_hint: str | None) -> Incoming:
    """Typed text: a command ("/start@oberih_bot" is "start") or words."""
    if text.startswith("/"):
        command = text[1:].split(maxsplit=1)[0].split("@")[0].lower() if len(text) > 1 else ""
        return Incoming(EventKind.COMMAND, text=command, language_hint=language_hint)
    return Incoming(EventKind.TEXT, text=text, language_hint=language_hint)


def media_ref(message: Message) -> MediaRef | None:
    """A file the child sent, by Telegram file_id: re-sent later by id, never forwarded."""
    group = message.media_group_id
    if message.photo:
        return MediaRef(MediaKind.PHOTO, message.photo[-1].file_id, message.message_id, group)
    for attribute, kind in (("animation", MediaKind.ANIMATION), ("video", MediaKind.VIDEO),
                            ("voice", MediaKind.VOICE), ("audio", MediaKind.AUDIO), ("document", MediaKind.DOCUMENT)):
        file = getattr(message, attribute, None)
        if file is not None:
            return MediaRef(kind, file.file_id, message.message_id, group)
    return None
