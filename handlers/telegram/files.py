"""A child's files for a staff chat: photos, videos and voice notes re-sent by file id or, from
Viber, by their media URL (Telegram keeps no name on those and re-encodes photos, which drops their
metadata), documents and audio fetched and sent again under a neutral name, a picture among them
drawn again without its metadata (bot/files.py)."""
from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.types import (
    BufferedInputFile, InputFile, InputMediaDocument, InputMediaPhoto, InputMediaVideo, Message,
)
from aiohttp import ClientError, ClientTimeout

from bot.files import clean
from bot.transport import Failure, OutgoingFile, SendError
from dialogs.model import MediaKind

BY_ID = (MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.ANIMATION, MediaKind.VOICE)
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API lets a bot download files up to 20 MB
URL_TIMEOUT = ClientTimeout(total=60)


async def send_one(bot: Bot, chat_id: int, file: OutgoingFile, caption: str | None, common: dict[str, Any]) -> Message:
    """One file; pictures and videos under a spoiler."""
    media = file.media
    if media.kind in BY_ID:
        if media.kind is MediaKind.PHOTO:
            return await bot.send_photo(chat_id, media.file_ref, caption=caption, has_spoiler=True, **common)
        if media.kind is MediaKind.VIDEO:
            return await bot.send_video(chat_id, media.file_ref, caption=caption, has_spoiler=True, **common)
        if media.kind is MediaKind.ANIMATION:
            return await bot.send_animation(chat_id, media.file_ref, caption=caption, has_spoiler=True, **common)
        return await bot.send_voice(chat_id, media.file_ref, caption=caption, **common)
    upload, picture = await _anonymous(bot, file)
    if picture and media.kind is MediaKind.PHOTO:
        return await bot.send_photo(chat_id, upload, caption=caption, has_spoiler=True, **common)
    return await bot.send_document(chat_id, upload, caption=caption, **common)


async def album_item(bot: Bot, file: OutgoingFile) -> Any:
    """One file of an album (photos and videos together, documents together)."""
    media = file.media
    if media.kind is MediaKind.PHOTO:
        return InputMediaPhoto(media=media.file_ref, has_spoiler=True)
    if media.kind is MediaKind.VIDEO:
        return InputMediaVideo(media=media.file_ref, has_spoiler=True)
    upload, picture = await _anonymous(bot, file)
    if picture and media.kind is MediaKind.PHOTO:
        return InputMediaPhoto(media=upload, has_spoiler=True)
    return InputMediaDocument(media=upload)


async def send_plain(bot: Bot, chat_id: int, files: list[OutgoingFile], caption: str | None,
                     common: dict[str, Any]) -> list[Message]:
    """The same files in a form Telegram takes when it refused them as they were (a wrong file type, a
    file id of another kind): uploaded again under their neutral names, a voice note as audio and
    anything else as a document (a picture still without its metadata)."""
    uploads = [await _upload(bot, file) for file in files]
    if len(files) == 1:
        voice = files[0].media.kind is MediaKind.VOICE
        send = bot.send_audio if voice else bot.send_document
        return [await send(chat_id, uploads[0], caption=caption, **common)]
    return await bot.send_media_group(chat_id, [InputMediaDocument(media=upload) for upload in uploads], **common)


async def _upload(bot: Bot, file: OutgoingFile) -> InputFile:
    upload, _picture = await _anonymous(bot, file)
    return upload


async def _anonymous(bot: Bot, file: OutgoingFile) -> tuple[InputFile, bool]:
    cleaned = clean(await fetch(bot, file.media.file_ref), file.name)
    return BufferedInputFile(cleaned.data, filename=cleaned.name), cleaned.picture


async def fetch(bot: Bot, file_ref: str) -> bytes:
    """A file's bytes: by its Telegram file id, or (a Viber child's file) from its media URL."""
    if not _is_url(file_ref):
        buffer = await bot.download(file_ref)
        return buffer.getvalue() if buffer is not None else b""
    client = await bot.session.create_session()
    try:
        async with client.get(file_ref, timeout=URL_TIMEOUT) as response:
            if response.status >= 400:
                raise SendError(Failure.REFUSED if response.status < 500 else Failure.SERVER, "file unavailable")
            data = await response.content.read(DOWNLOAD_LIMIT + 1)
    except (ClientError, TimeoutError) as error:
        raise SendError(Failure.NETWORK, type(error).__name__) from None
    if len(data) > DOWNLOAD_LIMIT:
        raise SendError(Failure.REFUSED, "file is too big")
    return data


def _is_url(file_ref: str) -> bool:
    return file_ref.startswith(("https://", "http://"))
