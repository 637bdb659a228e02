"""Telegram messages (as Telegram sends them: JSON) as engine events: what kind of thing the child
sent, and where to find it again."""
from __future__ import annotations

from typing import Any

from dialogs.model import EventKind, Incoming, MediaKind, MediaRef

UNSUPPORTED = {
    "sticker": MediaKind.STICKER, "location": MediaKind.LOCATION, "venue": MediaKind.LOCATION,
    "contact": MediaKind.CONTACT, "poll": MediaKind.POLL, "dice": MediaKind.OTHER, "game": MediaKind.OTHER,
    "video_note": MediaKind.OTHER, "story": MediaKind.OTHER, "paid_media": MediaKind.OTHER,
}
FILES = (("animation", MediaKind.ANIMATION), ("video", MediaKind.VIDEO), ("voice", MediaKind.VOICE),
         ("audio", MediaKind.AUDIO), ("document", MediaKind.DOCUMENT))


def message_event(message: dict[str, Any], edited: bool = False) -> Incoming:
    """One message as the engine's event: typed text, a command, a file, an edit, or something unsupported."""
    hint = (message.get("from") or {}).get("language_code")
    text = message.get("text")
    if edited:
        return Incoming(EventKind.EDIT, text=text or message.get("caption") or "", language_hint=hint)
    if isinstance(text, str):
        return text_event(text, hint)
    media = media_ref(message)
    if media is not None:
        return Incoming(EventKind.MEDIA, text=message.get("caption") or "", media=media, language_hint=hint)
    kind = next((kind for name, kind in UNSUPPORTED.items() if message.get(name)), MediaKind.OTHER)
    return Incoming(EventKind.UNSUPPORTED, media=MediaRef(kind), language_hint=hint)


def text_event(text: str, language_hint: str | None) -> Incoming:
    """Typed text: a command ("/start@oberih_bot" is "start") or words."""
    if text.startswith("/"):
        command = text[1:].split(maxsplit=1)[0].split("@")[0].lower() if len(text) > 1 else ""
        return Incoming(EventKind.COMMAND, text=command, language_hint=language_hint)
    return Incoming(EventKind.TEXT, text=text, language_hint=language_hint)


def media_ref(message: dict[str, Any]) -> MediaRef | None:
    """A file someone sent, by Telegram file_id: re-sent later by id, never forwarded."""
    group, message_id = message.get("media_group_id"), message.get("message_id")
    if message.get("photo"):
        return MediaRef(MediaKind.PHOTO, message["photo"][-1]["file_id"], message_id, group)
    for field, kind in FILES:
        file = message.get(field)
        if isinstance(file, dict) and file.get("file_id"):
            return MediaRef(kind, file["file_id"], message_id, group)
    return None
