"""Telegram updates into the inbox: long polling that confirms only what is stored, or a webhook."""
from __future__ import annotations

import asyncio
import hmac
import logging
from functools import partial
from typing import Any, Callable

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.methods import GetUpdates
from aiogram.types import Update
from aiohttp import web

from bot.conversation import ConversationService
from bot.inbox import Received
from handlers.telegram import lean_api
from handlers.telegram.child import child_turn, take_turn

log = logging.getLogger(__name__)

POLL_TIMEOUT = 25
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def update_lane(update: dict[str, Any], pseudonym: Callable[[str, Any], str]) -> str:
    """Updates of one chat are handled in order; the lane names the chat only by a keyed hash."""
    event = next((value for key, value in update.items() if key != "update_id" and isinstance(value, dict)), {})
    chat = event.get("chat") or (event.get("message") or {}).get("chat") or {}
    chat_id = chat.get("id") or (event.get("from") or {}).get("id", 0)
    return "tg:" + pseudonym("lane", chat_id)[:24]


class TelegramInbound:
    """Updates as Telegram sends them (JSON): a child's text or button press goes straight to the
    conversation (`child_turn`), anything else through aiogram's dispatcher."""

    def __init__(self, bot: Bot, dispatcher: Dispatcher, db: Any, inbox: Any,
                 pseudonym: Callable[[str, Any], str], conversations: ConversationService) -> None:
        self.bot, self.dispatcher, self.db, self.inbox, self.pseudonym = bot, dispatcher, db, inbox, pseudonym
        self.conversations = conversations
        self.alive = asyncio.Event()  # set after each successful getUpdates (read by /healthz)

    async def store(self, updates: list[dict[str, Any]]) -> None:
        """Each update handled or stored (bot/inbox.py), in order; only then may it be confirmed."""
        await self.inbox.receive_all("telegram", [
            Received(str(update["update_id"]), update_lane(update, self.pseudonym), update, partial(dict, update))
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
                params = {"offset": offset, "timeout": POLL_TIMEOUT, "allowed_updates": allowed}
                updates = await lean_api.call(self.bot, GetUpdates, params)
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
                offset = updates[-1]["update_id"] + 1

    async def handle(self, tx: Any, update: dict[str, Any]) -> None:
        """The inbox's handler for Telegram updates (new, or as stored), inside `tx`."""
        turn = child_turn(update)
        if turn is not None:
            await take_turn(tx, self.conversations, self.bot, turn)
            return
        await self.dispatcher.feed_update(self.bot, Update.model_validate(update, context={"bot": self.bot}), tx=tx)

    def webhook_route(self, secret: str) -> Callable[[web.Request], Any]:
        async def on_webhook(request: web.Request) -> web.Response:
            # Telegram sends the secret we set with setWebhook; anything else is refused unchanged.
            given = request.headers.get(SECRET_HEADER, "")
            if not hmac.compare_digest(given.encode(), secret.encode()):
                return web.Response(status=401)
            try:
                update = await request.json()
            except ValueError:
                return web.Response(status=400)
            if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
                return web.Response(status=400)
            await self.store([update])
            return web.Response()  # 200 only after the update is committed

        return on_webhook
