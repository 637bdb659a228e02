"""The Telegram transport: the delivery's calls as Bot API requests, and aiogram's errors as `Failure`s.

A child's messages, a case's topic, card and notices go through `lean_api` (plain JSON); the rarer
calls through aiogram's methods. Nothing here reads or writes the database.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError, TelegramBadRequest, TelegramForbiddenError, TelegramMigrateToChat, TelegramNetworkError,
    TelegramNotFound, TelegramRetryAfter, TelegramServerError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions

from bot.transport import Address, Failure, OutgoingFile, Pace, Rows, SendError, StaffFile
from handlers.telegram import lean_api
from handlers.telegram.files import album_item, fetch, send_one, send_plain

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
DELETE_AT_ONCE = 100  # deleteMessages takes at most 100 ids
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# Words of Telegram's error descriptions that may be stored and logged (never the description itself).
KNOWN_REASONS = ("chat not found", "message is too long", "thread not found", "not enough rights", "blocked",
                 "wrong file", "file is too big")


class TelegramTransport:
    can_delete = True
    text_limit = TEXT_LIMIT

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send_text(self, to: Address, text: str, buttons: Rows = (), *, protect: bool = False) -> list[int]:
        options: dict[str, Any] = {}
        if to.topic is not None:
            options["message_thread_id"] = to.topic
        if protect:
            options["protect_content"] = True
        rows = [[(button.label, button.payload) for button in row] for row in buttons]
        with _mapped(to.chat):
            return [await lean_api.send_text(self.bot, int(to.chat), text, rows or None, **options)]

    async def send_files(self, to: Address, files: Sequence[OutgoingFile], caption: str | None = None, *,
                         protect: bool = False) -> list[int]:
        common: dict[str, Any] = {"message_thread_id": to.topic, "protect_content": protect or None}
        try:
            with _mapped(to.chat):
                if len(files) == 1:  # Telegram albums need two to ten items
                    return [(await send_one(self.bot, int(to.chat), files[0], caption, common)).message_id]
                album = [await album_item(self.bot, file) for file in files]
                messages = await self.bot.send_media_group(int(to.chat), album, **common)
        except SendError as error:
            if error.failure is not Failure.REFUSED:
                raise
            # Telegram refused the files as they were: once more in a form it takes (as documents, a
            # voice note as audio); if that is refused too, the delivery gives the item up and says so.
            log.info("files refused; sending them again as documents", extra={"reason": error.reason})
            with _mapped(to.chat):
                messages = await send_plain(self.bot, int(to.chat), list(files), caption, common)
        return [message.message_id for message in messages]

    async def pass_on(self, to: Address, file: StaffFile, caption: str, unavailable: str, pace: Pace) -> list[int]:
        # A copy, never a forward: no "forwarded from" header names the staff member.
        with _mapped(to.chat):
            sent = await self.bot.copy_message(int(to.chat), file.chat, file.message_id, caption=caption or None)
        return [sent.message_id]

    async def delete_messages(self, to: Address, message_ids: Sequence[int]) -> None:
        for start in range(0, len(message_ids), DELETE_AT_ONCE):
            try:
                with _mapped(to.chat):
                    await self.bot.delete_messages(int(to.chat), list(message_ids[start:start + DELETE_AT_ONCE]))
            except SendError as error:
                if error.failure is not Failure.REFUSED:
                    raise  # older than 48 hours or already gone (refused): nothing more can be done

    async def send_picture(self, to: Address, picture: bytes, name: str, caption: str) -> list[int]:
        with _mapped(to.chat):
            sent = await self.bot.send_photo(int(to.chat), BufferedInputFile(picture, name), caption=caption,
                                             message_thread_id=to.topic)
        return [sent.message_id]

    async def edit_text(self, to: Address, message_id: int, text: str, buttons: Rows = ()) -> None:
        try:
            with _mapped(to.chat):
                await self.bot.edit_message_text(text, chat_id=int(to.chat), message_id=message_id,
                                                 reply_markup=markup(buttons), link_preview_options=NO_PREVIEW)
        except SendError as error:
            if "not modified" not in error.reason:
                raise

    async def open_topic(self, chat: int, name: str) -> int:
        with _mapped(chat):
            return await lean_api.create_topic(self.bot, chat, name)

    async def reopen_topic(self, chat: int, topic: int) -> None:
        with _mapped(chat):
            await self.bot.reopen_forum_topic(chat, topic)

    async def delete_topic(self, chat: int, topic: int) -> None:
        try:
            with _mapped(chat):
                await self.bot.delete_forum_topic(chat, topic)
        except SendError as error:
            if error.failure is not Failure.TOPIC_GONE:
                raise  # retried, and if it still fails, shown to admins (bot/delivery/losses.py)

    async def fetch_file(self, file_id: str) -> bytes:
        """A file by its Telegram file id (a counsellor's photo, for a Viber child)."""
        with _mapped(0):
            return await fetch(self.bot, file_id)


def markup(buttons: Rows) -> InlineKeyboardMarkup | None:
    """Button rows as Telegram's inline keyboard (None for no buttons)."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=button.label, callback_data=button.payload) for button in row] for row in buttons])


@contextlib.contextmanager
def _mapped(chat: int | str) -> Iterator[None]:
    """aiogram's errors as the delivery's `Failure`s. A private chat (a positive id) that refuses is a
    child out of reach; a group that refuses is a staff chat the bot cannot write to."""
    private = isinstance(chat, int) and chat > 0
    try:
        yield
    except TelegramRetryAfter as error:
        raise SendError(Failure.RATE_LIMITED, "429", retry_after=error.retry_after) from None
    except TelegramMigrateToChat as error:
        raise SendError(Failure.CHAT_MOVED, "chat migrated", new_chat_id=error.migrate_to_chat_id) from None
    except TelegramForbiddenError:
        raise SendError(Failure.RECIPIENT_GONE if private else Failure.NO_ACCESS, "blocked") from None
    except (TelegramBadRequest, TelegramNotFound) as error:
        raise _refusal(error.message, private) from None
    except TelegramServerError:
        raise SendError(Failure.SERVER, "telegram server error") from None
    except TelegramNetworkError:
        raise SendError(Failure.NETWORK, "network") from None
    except TelegramAPIError as error:
        raise SendError(Failure.UNKNOWN, type(error).__name__) from None


def _refusal(description: str, private: bool) -> SendError:
    text = description.lower()
    if "thread not found" in text or "topic_deleted" in text or "topic_id_invalid" in text:
        return SendError(Failure.TOPIC_GONE, "thread not found")
    if "topic_closed" in text:
        return SendError(Failure.TOPIC_CLOSED, "topic closed")
    if "not modified" in text:
        return SendError(Failure.REFUSED, "not modified")
    if "chat not found" in text:
        return SendError(Failure.RECIPIENT_GONE if private else Failure.NO_ACCESS, "chat not found")
    if "not enough rights" in text or "have no rights" in text:
        return SendError(Failure.NO_ACCESS, "not enough rights")
    reason = next((known for known in KNOWN_REASONS if known in text), "rejected by Telegram")
    return SendError(Failure.REFUSED, reason)
