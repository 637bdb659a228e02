"""Telegram updates in: long polling that confirms only what is stored, or a webhook; and the inbox's
handler for each update (a child's goes to the conversation, anything else to aiogram's dispatcher)."""
from __future__ import annotations

import asyncio
import hmac
import logging
from functools import partial
from typing import Any, Awaitable, Callable

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.methods import GetUpdates
from aiogram.types import Update
from aiohttp import web

from bot.conversation import ConversationService
from bot.inbox import InboxProcessor, Received
from bot.privacy import inbox_lane
from bot.storage_watch import StorageWatch
from handlers.telegram import lean_api
from handlers.telegram.child import child_turn, take_turn
from storage import ChannelName, Database, Transaction

log = logging.getLogger(__name__)

POLL_TIMEOUT = 25
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CHILD_UPDATES = ("message", "edited_message", "callback_query")


def update_lane(update: dict[str, Any], pseudonym: Callable[[str, Any], str]) -> str:
    """Updates of one chat are handled in order; the lane names the chat only by a keyed hash (the same
    lane /forget wipes: bot/privacy.py `inbox_lane`)."""
    event = next((value for key, value in update.items() if key != "update_id" and isinstance(value, dict)), {})
    chat = event.get("chat") or (event.get("message") or {}).get("chat") or {}
    chat_id = chat.get("id") or (event.get("from") or {}).get("id", 0)
    return inbox_lane(ChannelName.TELEGRAM, chat_id, pseudonym)


class TelegramUpdates:
    """The inbox's handler for Telegram updates (new, or as stored), inside the update's transaction."""

    def __init__(self, bot: Bot, dispatcher: Dispatcher, conversations: ConversationService) -> None:
        self.bot, self.dispatcher, self.conversations = bot, dispatcher, conversations

    @property
    def allowed(self) -> list[str]:
        """The update types to ask Telegram for: the child's and those the staff routers use."""
        return sorted(set(CHILD_UPDATES) | set(self.dispatcher.resolve_used_update_types()))

    async def handle(self, tx: Transaction, update: dict[str, Any]) -> None:
        turn = child_turn(update)
        if turn is not None:
            await take_turn(tx, self.conversations, self.bot, turn)
            return
        await self.dispatcher.feed_update(self.bot, Update.model_validate(update, context={"bot": self.bot}), tx=tx)


class TelegramReceiver:
    """Hands updates to the inbox; Telegram hears "received" only after they are handled or stored."""

    def __init__(self, bot: Bot, db: Database, inbox: InboxProcessor, pseudonym: Callable[[str, Any], str],
                 allowed: list[str]) -> None:
        self.bot, self.db, self.inbox, self.pseudonym, self.allowed = bot, db, inbox, pseudonym, allowed
        self.alive = asyncio.Event()  # set after each successful getUpdates
        self.watch = StorageWatch()  # a full disk: said once

    async def store(self, updates: list[dict[str, Any]]) -> None:
        """Each update of a poll handled or stored (bot/inbox.py), in order; only then may they be confirmed."""
        await self.inbox.receive_all(ChannelName.TELEGRAM, [self._received(update) for update in updates])

    def _received(self, update: dict[str, Any]) -> Received:
        return Received(str(update["update_id"]), update_lane(update, self.pseudonym), update, partial(dict, update))

    async def poll(self, stop: asyncio.Event) -> None:
        """Long polling where the offset moves past an update only after it is committed to the inbox."""
        async with self.db.transaction() as tx:
            last = await tx.inbox.last_external_id(ChannelName.TELEGRAM)
        offset = int(last) + 1 if last else None
        failures = 0
        while not stop.is_set():
            try:
                params = {"offset": offset, "timeout": POLL_TIMEOUT, "allowed_updates": self.allowed}
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
                    if not self.watch.failed(error):  # (a full disk is told once, not every second)
                        log.error("storing updates failed", extra={"reason": type(error).__name__})
                    await asyncio.sleep(1.0)
                    continue
                self.watch.stored()
                offset = updates[-1]["update_id"] + 1

    def webhook(self, secret: str) -> Callable[[web.Request], Awaitable[web.Response]]:
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
            try:  # with the others that arrive meanwhile, in one transaction
                await self.inbox.receive_one(ChannelName.TELEGRAM, self._received(update))
            except Exception as error:
                if not self.watch.failed(error):
                    raise
                # Not stored, so not acknowledged: Telegram sends it again later.
                return web.Response(status=503, text="the update could not be stored; try again later\n")
            self.watch.stored()
            return web.Response()  # 200 only after the update is committed

        return on_webhook
