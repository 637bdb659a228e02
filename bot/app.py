"""The one place that wires everything: storage, content, engine, channels, delivery, web server, scheduler."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiohttp import web

from bot.casework import Casework
from bot.checks import check_staff_chat
from bot.conversation import ConversationService
from bot.delivery import DeliveryWorker
from bot.inbox import InboxProcessor
from bot.limits import Limits
from bot.metrics import Metrics
from bot.outbox import Outbox
from bot.privacy import load_privacy
from bot.scheduler import Sweeps, start_scheduler
from bot.settings import Settings
from bot.web import build_web_app
from dialogs.engine import Engine
from dialogs.content import ContentInvalid
from dialogs.validate import load_content
from storage import Database

log = logging.getLogger(__name__)
FLUSH_SECONDS = 5.0
IDLE_CHAT_LIMITERS = 1000  # per-chat rate buckets kept in memory; a drained one is as good as new
# Open connections to the Bot API: ~1.4 KB each; 30 messages a second at Telegram's ~100 ms a call
# need a few, button answers and long polling a few more (aiogram's default is 100).
TELEGRAM_CONNECTIONS = 32


@dataclass
class App:
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
    bot: Bot | None = None
    telegram: Any = None  # TelegramInbound
    viber: Any = None  # ViberChannel
    senders: dict[str, Any] = field(default_factory=dict)
    runner: web.AppRunner | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)

    def reload_content(self) -> list[str]:
        """Load content again; on any mistake keep the old content live and return the mistakes."""
        try:
            content = load_content(self.settings.content_dir)
        except ContentInvalid as error:
            log.error("content reload refused", extra={"mistakes": len(error.problems)})
            return [str(problem) for problem in error.problems]
        self.engine.use(content)
        log.info("content reloaded")
        return []

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.runner is not None:
            await self.runner.cleanup()
        await self.db.finish_calls(FLUSH_SECONDS)  # a button's spinner, a staff reply: before the session closes
        if self.bot is not None:
            await self.bot.session.close()
        if self.viber is not None:
            await self.viber.close()
        await self.db.close()


async def build_app(settings: Settings, staff_channel: str = "telegram", clock: Any = None) -> App:
    """Build every part; nothing is started yet. Raises on invalid content or settings.
    `clock` (tests): what "now" is for the database, sweeps and office hours."""
    content = load_content(settings.content_dir)
    privacy = load_privacy(_secret(settings.data_key), _secret(settings.id_pepper), settings.data_dir)
    db = Database(settings.resolved_database_url, privacy, **({"clock": clock} if clock else {}))
    await db.start()
    engine = Engine(content, settings.country, settings.default_language,
                    draft_hours=settings.draft_ttl_hours, retention_days=settings.retention_days)
    outbox = Outbox(staff_channel)
    metrics = Metrics()
    casework = Casework(engine, outbox, settings)
    conversations = ConversationService(engine, privacy, outbox, settings)
    inbox = InboxProcessor(db, {}, settings.inbox_max_attempts, metrics)
    limits = Limits(settings.rate_global_per_second, settings.rate_chat_per_second, settings.rate_group_per_minute,
                    max_chats=IDLE_CHAT_LIMITERS)
    senders: dict[str, Any] = {}  # filled below by each enabled channel
    worker = DeliveryWorker(db, senders, limits, outbox.wake, on_failed=_tell_staff(outbox), metrics=metrics)
    outbox.worker = worker  # new items go straight to it after their commit
    app = App(settings, db, engine, outbox, conversations, casework, metrics, inbox, worker,
              Sweeps(db, engine, outbox, settings), senders=senders)
    if settings.telegram_enabled:
        _add_telegram(app, privacy)
    if settings.viber_enabled:
        from handlers.viber.channel import ViberChannel  # only deployments with Viber need viberbot loaded

        app.viber = ViberChannel(settings, db, engine, conversations, inbox.wake, privacy)
        inbox.handlers["viber"] = app.viber.handle
        app.senders["viber"] = app.viber.sender
        if app.bot is not None:
            from handlers.viber.media import telegram_fetcher

            app.viber.sender.fetch_file = telegram_fetcher(app.bot)  # counsellors' photos reach Viber children
    return app


def _add_telegram(app: App, privacy: Any) -> None:
    from handlers.telegram.child import child_router
    from handlers.telegram.groups import groups_router
    from handlers.telegram.staff import staff_router
    from handlers.telegram.statistics import statistics_router
    from handlers.telegram.inbound import TelegramInbound
    from handlers.telegram.sender import StaffChats, TelegramSender
    from handlers.telegram.speed import pin_response_models

    pin_response_models()
    settings = app.settings
    api = TelegramAPIServer.from_base(settings.telegram_api_url) if settings.telegram_api_url else PRODUCTION
    session = AiohttpSession(api=api, limit=TELEGRAM_CONNECTIONS)
    app.bot = Bot(settings.telegram_bot_token.get_secret_value(), session=session)
    chats = StaffChats(settings.operator_chat_id, settings.police_chat_id)
    dispatcher = Dispatcher(disable_fsm=True, conversations=app.conversations, casework=app.casework, staff_chats=chats,
                            reload_content=app.reload_content)
    # Children's private chats first (nearly all updates; no other router takes a private chat), then
    # chats the bot must leave, then staff chats.
    dispatcher.include_routers(child_router(), groups_router(), statistics_router(), staff_router())
    app.telegram = TelegramInbound(app.bot, dispatcher, app.db, app.inbox, privacy.pseudonym, app.conversations)
    app.inbox.handlers["telegram"] = app.telegram.handle
    app.senders["telegram"] = TelegramSender(app.bot, app.db, app.engine, chats, settings.admin_ids)


def _tell_staff(outbox: Outbox):
    async def on_failed(tx: Any, item: Any, reason: str) -> None:
        # Operators must learn when an answer could not reach the child (e.g. the child blocked the bot).
        if item.target == "child" and item.case_id is not None:
            case = await tx.cases.get(item.case_id)
            if case is not None:
                await outbox.notice(tx, case, "operator.notice.undeliverable", reason=reason)
    return on_failed


async def run_app(app: App, stop: asyncio.Event) -> None:
    """Start every loop, wait for `stop`, then stop gracefully within a few seconds."""
    settings = app.settings
    worker_stop, loops_stop = asyncio.Event(), asyncio.Event()
    webhooks = []
    if app.bot is not None:
        await check_staff_chat(app.bot, settings.operator_chat_id, "OPERATOR_CHAT_ID")
        if settings.police_chat_id:
            await check_staff_chat(app.bot, settings.police_chat_id, "POLICE_CHAT_ID")
        if settings.telegram_webhook_url:
            secret = settings.telegram_webhook_secret.get_secret_value()
            webhooks.append((urlparse(settings.telegram_webhook_url).path or "/", app.telegram.webhook_route(secret)))
            await app.bot.set_webhook(settings.telegram_webhook_url, secret_token=secret,
                                      allowed_updates=app.telegram.dispatcher.resolve_used_update_types())
        else:
            await app.bot.delete_webhook()
            app.tasks.append(asyncio.create_task(app.telegram.poll(loops_stop), name="telegram-polling"))
    if app.viber is not None:
        webhooks.append((urlparse(settings.viber_webhook_url).path or "/", app.viber.webhook))
    web_app = build_web_app(app.db, app.metrics, lambda: all(not t.done() for t in app.tasks), webhooks,
                            list(app.viber.routes) if app.viber is not None else [])
    app.runner = web.AppRunner(web_app, access_log=None)
    await app.runner.setup()
    await web.TCPSite(app.runner, settings.web_host, settings.web_port).start()
    if app.viber is not None:
        await app.viber.set_webhook()
    inbox_task = asyncio.create_task(app.inbox.run(loops_stop), name="inbox")
    worker_task = asyncio.create_task(app.worker.run(worker_stop), name="delivery")
    app.tasks += [inbox_task, worker_task]
    scheduler = start_scheduler(app.sweeps)
    log.info("started", extra={"telegram": app.bot is not None, "viber": app.viber is not None,
                               "webhook": bool(settings.telegram_webhook_url)})
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        scheduler.shutdown(wait=False)
        loops_stop.set()
        app.inbox.wake.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(inbox_task, timeout=FLUSH_SECONDS)  # in-flight handlers finish
        worker_stop.set()
        app.outbox.wake.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(worker_task, timeout=1.0)
        await app.worker.flush(FLUSH_SECONDS)
        log.info("stopped")


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None
