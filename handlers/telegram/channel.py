"""The Telegram channel: the bot, its transport, the staff chats' routers, and updates in."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer

from bot.casework import Casework
from bot.channel import Route
from bot.conversation import ConversationService
from bot.inbox import InboxProcessor
from bot.settings import Settings
from bot.staff_chats import ChatPlace, StaffChats
from handlers.telegram.checks import check_staff_chat, check_telegram
from handlers.telegram.groups import groups_router
from handlers.telegram.inbound import TelegramReceiver, TelegramUpdates
from handlers.telegram.speed import pin_response_models
from handlers.telegram.staff import staff_router
from handlers.telegram.statistics import statistics_router
from handlers.telegram.transport import TelegramTransport
from storage import ChannelName, Database, Transaction

log = logging.getLogger(__name__)

# Open connections to the Bot API: ~1.4 KB each; 30 messages a second at Telegram's ~100 ms a call
# need a few, button answers and long polling a few more (aiogram's default is 100).
TELEGRAM_CONNECTIONS = 32
CHECKS_AT_ONCE = 8  # staff chats checked at a time at start: quick, and no burst of requests with many regions


def make_bot(settings: Settings) -> Bot:
    """aiogram's Bot for the configured token and Bot API server."""
    pin_response_models()
    api = TelegramAPIServer.from_base(settings.telegram_api_url) if settings.telegram_api_url else PRODUCTION
    session = AiohttpSession(api=api, limit=TELEGRAM_CONNECTIONS)
    return Bot(settings.telegram_bot_token.get_secret_value(), session=session)


class TelegramChannel:
    name = ChannelName.TELEGRAM

    def __init__(self, settings: Settings, bot: Bot, transport: TelegramTransport, db: Database,
                 conversations: ConversationService, casework: Casework, chats: StaffChats,
                 pseudonym: Callable[[str, Any], str], reload_content: Callable[[], list[str]]) -> None:
        self.settings, self.bot, self.transport, self.db, self.chats = settings, bot, transport, db, chats
        self.pseudonym = pseudonym
        dispatcher = Dispatcher(disable_fsm=True, conversations=conversations, casework=casework, staff_chats=chats,
                                reload_content=reload_content)
        # Children's private chats never reach the dispatcher (handlers/telegram/child.py); of the rest,
        # chats the bot must leave first, then /stats, then staff chats (whose catch-all would take it).
        dispatcher.include_routers(groups_router(), statistics_router(), staff_router())
        self.updates = TelegramUpdates(bot, dispatcher, conversations)
        self._receiver: TelegramReceiver | None = None

    async def handle(self, tx: Transaction, update: dict[str, Any]) -> None:
        await self.updates.handle(tx, update)

    async def check(self) -> None:
        room = asyncio.Semaphore(CHECKS_AT_ONCE)

        async def check_chat(place: ChatPlace) -> None:
            async with room:
                await check_staff_chat(self.bot, place.chat_id, place.setting)

        # All at once, a round trip in all; the first failure in this order is named: no network or a
        # wrong token first (not a wrong chat id), then the default chats, then the regions' own.
        checks = [check_telegram(self.bot), *map(check_chat, self.chats.places())]
        for error in await asyncio.gather(*checks, return_exceptions=True):
            if error is not None:
                raise error

    def routes(self, inbox: InboxProcessor) -> list[Route]:
        receiver = self._receiver_for(inbox)
        url, secret = self.settings.telegram_webhook_url, self.settings.telegram_webhook_secret
        if not url or secret is None:
            return []
        return [("POST", urlparse(url).path or "/", receiver.webhook(secret.get_secret_value()))]

    async def start(self, inbox: InboxProcessor, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        receiver = self._receiver_for(inbox)
        settings = self.settings
        if settings.telegram_webhook_url and settings.telegram_webhook_secret is not None:
            await self.bot.set_webhook(settings.telegram_webhook_url,
                                       secret_token=settings.telegram_webhook_secret.get_secret_value(),
                                       allowed_updates=receiver.allowed)
            return []
        await self.bot.delete_webhook()
        return [asyncio.create_task(receiver.poll(stop), name="telegram-polling")]

    def alive(self) -> bool:
        return True

    async def close(self) -> None:
        await self.bot.session.close()

    def _receiver_for(self, inbox: InboxProcessor) -> TelegramReceiver:
        if self._receiver is None:
            self._receiver = TelegramReceiver(self.bot, self.db, inbox, self.pseudonym, self.updates.allowed)
        return self._receiver
