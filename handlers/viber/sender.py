"""Outbox items for children on Viber as Viber REST calls (run off the event loop)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram.exceptions import TelegramBadRequest, TelegramNotFound
from viberbot.api.messages import FileMessage, PictureMessage

from bot.delivery import DeliveryError
from bot.outbox import Kind
from dialogs.engine import Engine
from handlers.viber.api import GONE, REJECTED, TOO_MANY_REQUESTS, ViberApi, ViberHTTPError, ViberStatusError
from handlers.viber.media import FetchFile, MediaStore, describe
from handlers.viber.render import text_messages

log = logging.getLogger(__name__)

RATE_LIMIT_WAIT = 30.0  # Viber says "too many requests" without saying how long to wait
PICTURE_LIMIT = 1024 * 1024  # larger pictures go as files (Viber's picture limit)
PICTURE_TYPES = ("jpg", "png", "gif")
ADVICE_KEY = "exit.viber_advice"
FILE_NOTE_KEY = "notice.viber_file_unavailable"


class ViberSender:
    """Renders items for target "child": say, staff_text, staff_copy, delete_messages."""

    def __init__(self, api: ViberApi, db: Any, engine: Engine, media: MediaStore,
                 fetch_file: FetchFile | None = None) -> None:
        self.api, self.db, self.engine, self.media = api, db, engine, media
        self.fetch_file = fetch_file  # downloads a counsellor's Telegram file by file id; wired by the app

    async def send(self, item: Any, limits: Any) -> dict | None:
        if item.target != "child":
            raise DeliveryError("the Viber channel only writes to children", permanent=True)
        receiver, lang = await self._receiver(item)
        try:
            tokens = await self._render(item, receiver, lang, limits)
        except ViberStatusError as error:
            if error.status in GONE:
                raise DeliveryError(f"child unreachable on Viber: {GONE[error.status]}", permanent=True) from None
            if error.status == TOO_MANY_REQUESTS:
                raise DeliveryError("429", retry_after=RATE_LIMIT_WAIT) from None
            if error.status in REJECTED:
                raise DeliveryError(f"rejected by Viber: {REJECTED[error.status]}", permanent=True) from None
            raise DeliveryError(f"viber status {error.status}") from None  # retried with back-off
        except ViberHTTPError as error:
            if error.status == 429:
                raise DeliveryError("429", retry_after=error.retry_after or RATE_LIMIT_WAIT) from None
            raise  # 5xx: retried with back-off (the worker reads error.status)
        # Message tokens, remembered like Telegram message ids: a quick exit then knows there is a chat to hide.
        return {"message_ids": tokens} if tokens else None

    async def _render(self, item: Any, receiver: str, lang: str, limits: Any) -> list[int]:
        payload = item.payload
        if item.kind == Kind.SAY:
            return await self._send_all(item, receiver, text_messages(payload["text"], payload.get("buttons")), limits)
        if item.kind == Kind.STAFF_TEXT:
            return await self._send_all(item, receiver, text_messages(payload["text"]), limits)
        if item.kind == Kind.STAFF_COPY:
            return await self._staff_copy(item, receiver, lang, limits)
        if item.kind == Kind.DELETE_MESSAGES:
            # Viber bots cannot delete messages: tell the child how to hide the chat themselves.
            advice = self._say(payload.get("lang") or lang, ADVICE_KEY)
            return await self._send_all(item, receiver, text_messages(advice), limits) if advice else []
        raise DeliveryError(f"unknown kind {item.kind}", permanent=True)

    async def _staff_copy(self, item: Any, receiver: str, lang: str, limits: Any) -> list[int]:
        payload = item.payload
        caption = payload.get("caption") or ""
        data = await self._fetch(payload.get("file_ref") or "")
        if data is None:
            text = "\n".join(filter(None, (caption, self._say(lang, FILE_NOTE_KEY))))
            return await self._send_all(item, receiver, text_messages(text), limits) if text else []
        ext, content_type = describe(data)
        token, url = self.media.put(data, content_type)
        try:
            if payload.get("kind") == "photo" and ext in PICTURE_TYPES and len(data) <= PICTURE_LIMIT:
                file = PictureMessage(media=url, text="")
            else:
                file = FileMessage(media=url, size=len(data), file_name=f"file.{ext}")
            return await self._send_all(item, receiver, [*(text_messages(caption) if caption else []), file], limits)
        except BaseException:
            self.media.discard(token)  # not sent: a retry puts the file up again under a new URL
            raise

    async def _fetch(self, file_ref: str) -> bytes | None:
        if self.fetch_file is None or not file_ref:
            return None
        try:
            return await self.fetch_file(file_ref)
        except (TelegramBadRequest, TelegramNotFound):
            log.warning("staff file could not be fetched from Telegram; sending the caption only")
            return None  # too big or gone: retrying would not help

    async def _send_all(self, item: Any, receiver: str, messages: list, limits: Any) -> list[int]:
        tokens = []
        for index, message in enumerate(messages):
            if index:
                await limits.acquire_extra(item)
            tokens.append(int(await asyncio.to_thread(self.api.send, receiver, message)))
        return tokens

    async def _receiver(self, item: Any) -> tuple[str, str]:
        address, lang = item.payload.get("address"), self.engine.default_language
        if address is None and item.conversation_key:
            async with self.db.transaction() as tx:
                conversation = await tx.conversations.get(item.conversation_key)
            if conversation is not None:
                address, lang = conversation.address, (conversation.state or {}).get("lang") or lang
        if not address or not address.get("viber_id"):
            raise DeliveryError("no address: the child left the Viber chat or deleted their data", permanent=True)
        return str(address["viber_id"]), lang

    def _say(self, lang: str, key: str) -> str | None:
        """The text, or None while content does not have the key yet."""
        text = self.engine.say(lang, key)
        return None if text == key else text
