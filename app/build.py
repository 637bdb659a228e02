"""Building every part of one bot process, in the order their constructors need them.

Transports first (the delivery needs them), then the delivery worker, the outbox that hands new
items to it, the services, the channels that feed the services, and last the inbox that hands each
channel's updates back to it. Nothing is filled in after construction; nothing is started here.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from bot.casework import Casework
from bot.channel import Channel
from bot.conversation import ConversationService
from bot.delivery import AdminAlarm, Courier, DeliveryWorker
from bot.delivery.losses import Losses
from bot.heartbeat import Heartbeat, process_owner
from bot.inbox import InboxProcessor
from bot.limits import Limits
from bot.lost_updates import ChildOf, LostUpdates
from bot.metrics import Metrics
from bot.outbox import Outbox
from bot.privacy import load_privacy
from bot.scheduler import Sweeps
from bot.settings import Settings
from bot.staff_chats import StaffChats
from bot.transport import Transport
from dialogs.content import ContentInvalid
from dialogs.engine import Engine
from dialogs.validate import load_content
from handlers.console import OPERATOR_CHAT, POLICE_CHAT, ConsoleChannel, ConsoleTransport
from storage import ChannelName, Database

log = logging.getLogger(__name__)
FLUSH_SECONDS = 5.0
IDLE_CHAT_LIMITERS = 1000  # per-chat rate buckets kept in memory; a drained one is as good as new


@dataclass
class Service:
    """Everything one running bot process holds; `close()` releases it all."""

    settings: Settings
    db: Database
    engine: Engine
    outbox: Outbox
    conversations: ConversationService
    casework: Casework
    metrics: Metrics
    inbox: InboxProcessor
    worker: DeliveryWorker
    sweeps: Sweeps
    channels: dict[ChannelName, Channel]
    heartbeat: Heartbeat | None = None  # None only where no loops run (the console)
    runner: web.AppRunner | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def reload_content(self) -> list[str]:
        """Load content again; on any mistake keep the old content live and return the mistakes."""
        return reload_content(self.engine, self.settings.content_dir)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.runner is not None:
            await self.runner.cleanup()
        await self.db.finish_calls(FLUSH_SECONDS)  # a button's spinner, a staff reply: before the channels close
        for channel in self.channels.values():
            await channel.close()
        await self.db.close()


def reload_content(engine: Engine, content_dir: Path) -> list[str]:
    """Load content again into `engine`; on any mistake keep the old content live and return the mistakes."""
    try:
        content = load_content(content_dir)
    except ContentInvalid as error:
        log.error("content reload refused", extra={"mistakes": len(error.problems)})
        return [str(problem) for problem in error.problems]
    engine.use(content)
    log.info("content reloaded")
    return []


async def build(settings: Settings, *, console: ConsoleTransport | None = None,
                clock: Callable[[], datetime] | None = None) -> Service:
    """Build every part; nothing is started yet. Raises on invalid content or settings.
    `console`: play the channels in a terminal. `clock` (tests): what "now" is for the database."""
    content = load_content(settings.content_dir)
    privacy = load_privacy(_secret(settings.data_key), _secret(settings.id_pepper), settings.resolved_keys_dir,
                           settings.data_dir)
    db = Database(settings.resolved_database_url, privacy, pool_size=settings.database_pool_size,
                  **({"clock": clock} if clock else {}))
    await db.start()
    engine = Engine(content, settings.country, settings.default_language,
                    draft_hours=settings.draft_ttl_hours, retention_days=settings.retention_days,
                    regions_with_chats=frozenset() if console is not None else  # the console plays one chat
                    frozenset(settings.operator_chats) | frozenset(settings.police_chats))
    metrics = Metrics()
    reload = partial(reload_content, engine, settings.content_dir)

    transports: dict[ChannelName, Transport] = {}
    bot = None
    if console is not None:
        staff_channel, chats = ChannelName.CONSOLE, StaffChats(OPERATOR_CHAT, POLICE_CHAT)
        transports[ChannelName.CONSOLE] = console
    else:
        staff_channel, chats = ChannelName.TELEGRAM, StaffChats(settings.operator_chat_id or 0, settings.police_chat_id,
                                                                dict(settings.operator_chats), dict(settings.police_chats))
    if settings.telegram_enabled and console is None:
        from handlers.telegram.channel import make_bot
        from handlers.telegram.transport import TelegramTransport

        bot = make_bot(settings)
        transports[ChannelName.TELEGRAM] = telegram = TelegramTransport(bot)
        if settings.viber_enabled:  # only deployments with Viber need viberbot loaded
            from handlers.viber.channel import make_transport

            transports[ChannelName.VIBER] = make_transport(settings, telegram.fetch_file)

    # The worker's own notices (a message that could not reach a child) are queued without a hand-over:
    # the round that a failure always triggers takes them.
    notices = Outbox(staff_channel=staff_channel, chats=chats)
    owner = process_owner()  # the delivery worker's and the inbox's leases are this process's (bot/heartbeat.py)
    courier = Courier(db, engine, transports, chats, owner)
    staff_transport = transports.get(staff_channel)
    losses = Losses(notices, chats, engine)
    worker = DeliveryWorker(
        db, {name: courier for name in transports}, _limits(settings, console is not None), owner=owner,
        keep_seconds=settings.retention_days * 86400.0, on_failed=losses, on_chat_back=losses.chat_back, metrics=metrics,
        on_chat_trouble=AdminAlarm(staff_transport, engine, settings.admin_ids) if staff_transport else None)
    outbox = Outbox(worker, staff_channel, chats)
    casework = Casework(engine, outbox, settings)
    conversations = ConversationService(engine, privacy, outbox, settings)

    channels: dict[ChannelName, Channel] = {}
    if console is not None:
        channels[ChannelName.CONSOLE] = ConsoleChannel(console)
    if bot is not None:
        from handlers.telegram.channel import TelegramChannel

        channels[ChannelName.TELEGRAM] = TelegramChannel(
            settings, bot, transports[ChannelName.TELEGRAM], db, conversations, casework, chats, privacy.pseudonym, reload)
    if ChannelName.VIBER in transports:
        from handlers.viber.channel import ViberChannel

        channels[ChannelName.VIBER] = ViberChannel(
            settings, transports[ChannelName.VIBER], db, engine, conversations, privacy.pseudonym)
    lost = LostUpdates(engine, privacy.pseudonym, outbox, _children(channels))
    inbox = InboxProcessor(db, {name: channel.handle for name, channel in channels.items()},
                           settings.inbox_max_attempts, metrics, owner=owner, on_parked=lost.parked)
    return Service(settings, db, engine, outbox, conversations, casework, metrics, inbox, worker,
                   Sweeps(db, engine, outbox, settings), channels, Heartbeat(db, owner))


def _children(channels: dict[ChannelName, Channel]) -> dict[str, ChildOf]:
    """Each channel's reading of which child sent an update (a lost one is told to them)."""
    found: dict[str, ChildOf] = {}
    if ChannelName.TELEGRAM in channels:
        from handlers.telegram.child import child_of

        found[ChannelName.TELEGRAM] = child_of
    if ChannelName.VIBER in channels:
        from handlers.viber.convert import child_of as viber_child_of

        found[ChannelName.VIBER] = viber_child_of
    return found


def _limits(settings: Settings, local: bool) -> Limits:
    if local:  # no Telegram behind the console: its limits would only slow the terminal down
        return Limits(1000, 1000, 100_000, max_chats=IDLE_CHAT_LIMITERS)
    return Limits(settings.rate_global_per_second, settings.rate_chat_per_second, settings.rate_group_per_minute,
                  max_chats=IDLE_CHAT_LIMITERS)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
