"""Telegram updates into the inbox: long polling that confirms only what is stored, or a webhook."""
from __future__ import annotations

import asyncio
import hmac
import logging
from functools import partial
from typing import Any, Callable

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.types import Update
from aiohttp import web

from bot.inbox import Received

log = logging.getLogger(__name__)

POLL_TIMEOUT = 25
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def update_lane(update: Update, pseudonym: Callable[[str, Any], str]) -> str:
    """Updates of one chat are handled in order; the lane names the chat only by a keyed hash."""
    event = update.event
    chat = getattr(event, "chat", None) or getattr(getattr(event, "message", None), "chat", None)
    chat_id = chat.id if chat else getattr(getattr(event, "from_user", None), "id", 0)
    return "tg:" + pseudonym("lane", chat_id)[:24]


def _as_json(update: Update) -> dict:
    return update.model_dump(mode="json", exclude_none=True)


class TelegramInbound:
    def __init__(self, bot: Bot, dispatcher: Dispatcher, db: Any, inbox: Any,
                 pseudonym: Callable[[str, Any], str]) -> None:
        self.bot, self.dispatcher, self.db, self.inbox, self.pseudonym = bot, dispatcher, db, inbox, pseudonym
        self.alive = asyncio.Event()  # set after each successful getUpdates (read by /healthz)

    async def store(self, updates: list[Update]) -> None:
        """Each update handled or stored (bot/inbox.py), in order; only then may it be confirmed."""
        await self.inbox.receive_all("telegram", [
            Received(str(update.update_id), update_lane(update, self.pseudonym), update, partial(_as_json, update))
            for update in updates])

    async def poll(self, stop: asyncio.Event) -> None:
        """Long polling where the offset moves past an update only after it is committed to the inbox."""
        async with self.db.transaction() as tx:
            last = await tx.inbox.last_external_id("telegram")
        offset = int(last) + 1 if last else None
        allowed = self.dispatcher.resolve_used_update_types()
        failures = 0
        while not stop.is_set():
            try:
                updates = await self.bot.get_updates(offset=offset, timeout=POLL_TIMEOUT, allowed_updates=allowed)
                failures = 0
                self.alive.set()
            except (TelegramNetworkError, TelegramAPIError) as error:
                failures += 1
                log.warning("getUpdates failed", extra={"reason": type(error).__name__, "attempt": failures})
                try:
                    await asyncio.wait_for(stop.wait(), timeout=min(30.0, 0.5 * 2 ** failures))
                except TimeoutError:
                    pass
                continue
            if updates:
                try:
                    await self.store(updates)
                except Exception as error:  # noqa: BLE001 — not stored: the offset stays, Telegram sends them again
                    log.error("storing updates failed", extra={"reason": type(error).__name__})
                    await asyncio.sleep(1.0)
                    continue
                offset = updates[-1].update_id + 1

    async def handle(self, tx: Any, update: Update | dict) -> None:
        """The inbox's handler for Telegram updates (parsed, or as stored): the real dispatcher, inside `tx`."""
        if isinstance(update, dict):
            update = Update.model_validate(update, context={"bot": self.bot})
        await self.dispatcher.feed_update(self.bot, update, tx=tx)

    def webhook_route(self, secret: str) -> Callable[[web.Request], Any]:
        async def on_webhook(request: web.Request) -> web.Response:
            # Telegram sends the secret we set with setWebhook; anything else is refused unchanged.
            given = request.headers.get(SECRET_HEADER, "")
            if not hmac.compare_digest(given.encode(), secret.encode()):
                return web.Response(status=401)
            try:
                update = Update.model_validate(await request.json(), context={"bot": self.bot})
            except ValueError:
                return web.Response(status=400)
            await self.store([update])
            return web.Response()  # 200 only after the update is committed

        return on_webhook
