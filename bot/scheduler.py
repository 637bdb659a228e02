"""Scheduled care: idempotent sweeps over the database, safe to run in every process at once.

Each sweep claims a row by a conditional update before acting on it (`cases.advance`), so when
two processes sweep together only one of them raises a case, checks in, or purges.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.delivery.openings import sweep_openings
from bot.outbox import Outbox
from bot.receipts import RECEIPT_WINDOW
from bot.reconnect import chats_of
from bot.settings import Settings
from bot.statistics.record import record
from bot.statistics.report import post_last_week
from dialogs.engine import Engine
from dialogs.model import State
from dialogs.steps import BuiltinStep
from storage import ConcurrentUpdate, Conversation, Database, StatEvent, Target, Transaction

log = logging.getLogger(__name__)
HOUSEKEEPING_AFTER = timedelta(hours=48)  # dedup of updates and quick-exit message ids need 48 hours
SWEEP_LIMIT = 500
DIGEST_EVERY = timedelta(seconds=50)  # "a minute", with room for the scheduler's jitter


class Sweeps:
    def __init__(self, db: Database, engine: Engine, outbox: Outbox, settings: Settings) -> None:
        self.db, self.engine, self.outbox, self.settings = db, engine, outbox, settings

    async def every_minute(self) -> None:
        await self.raise_unaccepted()
        await self.check_in()
        await self.digest()
        async with self.db.transaction() as tx:
            await tx.outbox.stuck(tx.now)
        self.outbox.nudge()

    async def every_hour(self) -> None:
        await self.expire_drafts()
        await self.purge_closed()
        await sweep_openings(self.db, self.outbox)  # topics created but never recorded on their case
        async with self.db.transaction() as tx:
            await tx.inbox.forget_done(tx.now - HOUSEKEEPING_AFTER)
            await tx.chat_messages.forget_before(tx.now - HOUSEKEEPING_AFTER)
            await tx.outbox.purge_sent(tx.now - HOUSEKEEPING_AFTER)
            await tx.heartbeats.forget(tx.now - HOUSEKEEPING_AFTER)  # processes long gone
            # An update that could not be processed keeps its content no longer than anything else.
            await tx.inbox.wipe_parked(tx.now - timedelta(days=self.settings.retention_days))
            await tx.receipt_failures.forget_before(tx.now - RECEIPT_WINDOW)  # a day's count is all they are for
        self.outbox.nudge()

    async def raise_unaccepted(self) -> None:
        """A new case nobody accepted within the SLA is raised in its topic, then to the admins."""
        settings = self.settings
        for urgent, minutes in ((True, settings.urgent_sla_minutes), (False, settings.sla_minutes)):
            for level in (1, 2):
                async with self.db.transaction() as tx:
                    waited = minutes * level
                    for case in await tx.cases.unaccepted(tx.now - timedelta(minutes=waited), urgent, level):
                        if case.urgent != urgent or not await tx.cases.advance(case.id, "sla_level", case.sla_level, level):
                            continue
                        if level == 1:
                            await self.outbox.notice(tx, case, "operator.notice.sla", minutes=waited)
                        else:
                            await self.outbox.general(tx, "operator.notice.sla_admins", case_number=case.number,
                                                      minutes=waited, chat_region=case.region)  # the case's chat

    async def check_in(self) -> None:
        """A child who asked for an answer gets one gentle check-in after CHECKIN_DAYS."""
        async with self.db.transaction() as tx:
            for case in await tx.cases.checkins_due(tx.now):
                if not await tx.cases.advance(case.id, "checkin_sent", False, True):
                    continue
                chats = await chats_of(tx, case) if case.reply_wanted else []
                for chat in chats:  # every chat that proved the receipt code (bot/reconnect.py)
                    text = self.engine.say(case.language, "notice.checkin")
                    await self.outbox.say_to_child(tx, chat.channel, chat.conversation_key, text)
                if chats:
                    await self.outbox.notice(tx, case, "operator.notice.checkin_sent")
                    await record(tx, StatEvent.CHECKIN_SENT, case)  # statistics

    async def digest(self) -> None:
        """When new cards outrun a chat's group limit, its staff get one line a minute naming who waits (one
        line however many processes sweep: the minute's turn is taken once)."""
        async with self.db.transaction() as tx:
            waiting = await tx.outbox.pending_cards()
            if len(waiting) <= self.settings.rate_group_per_minute or not await tx.heartbeats.take_turn(
                    "digest", DIGEST_EVERY):
                return
            by_chat: dict[str | None, list[str]] = {}  # each chat (a region's own, or the default) its own line
            for case in [await tx.cases.get(case_id) for case_id in waiting]:
                if case is not None:
                    by_chat.setdefault(self.outbox.route(Target.OPERATOR, case.region), []).append(case.number)
            for region, numbers in by_chat.items():
                if len(numbers) > self.settings.rate_group_per_minute:
                    await self.outbox.general(tx, "operator.digest", count=len(numbers), numbers=", ".join(numbers[:50]),
                                              chat_region=region)

    async def expire_drafts(self) -> None:
        """A report left half-told for DRAFT_TTL_HOURS is deleted; the child is told kindly on return.
        Idle conversations without a draft or an open case are deleted after RETENTION_DAYS."""
        after = None
        while True:
            async with self.db.transaction() as tx:
                before = tx.now - timedelta(hours=self.settings.draft_ttl_hours)
                page = await tx.conversations.stale(before, SWEEP_LIMIT, after)
                for conversation in page:
                    await self._expire(tx, conversation)
            if len(page) < SWEEP_LIMIT:
                return
            after = (page[-1].updated_at, page[-1].key)

    async def _expire(self, tx: Transaction, conversation: Conversation) -> None:
        state = State.from_dict(conversation.state)
        if state.has_draft:
            state.clear_draft()
            state.expired = True
            if self.engine.is_draft_step(state.step):
                state.step = BuiltinStep.MENU
            try:
                await tx.conversations.save(conversation.key, conversation.channel, state.to_dict(),
                                            expected_version=conversation.version)
            except ConcurrentUpdate:
                pass  # the child (or another process) was quicker: nothing is abandoned after all
        elif (conversation.updated_at < tx.now - timedelta(days=self.settings.retention_days)
              and await tx.cases.open_for(conversation.key) is None):
            await tx.conversations.delete(conversation.key)  # nothing to keep for an idle child

    async def purge_closed(self) -> None:
        """Closed cases past RETENTION_DAYS: delete them and their topics (their statistics were counted as they moved)."""
        async with self.db.transaction() as tx:
            for case in await tx.cases.closed_before(tx.now - timedelta(days=self.settings.retention_days)):
                if not await tx.cases.delete(case.id):
                    continue  # another process purged it first
                await tx.audit.anonymise_case(case.id)  # what was done on which day stays; whose case, not
                for target in (Target.OPERATOR, Target.POLICE):
                    topic = case.topic(target).topic_id
                    if topic is not None:
                        await self.outbox.delete_topic(tx, target, topic, case.region)
                log.info("case purged", extra={"case": case.number})


def start_scheduler(sweeps: Sweeps) -> AsyncIOScheduler:
    """APScheduler 3 needs a running loop at start(): call this inside the app's main coroutine."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(sweeps.every_minute, "interval", minutes=1, max_instances=1, coalesce=True)
    scheduler.add_job(sweeps.every_hour, "interval", hours=1, max_instances=1, coalesce=True)
    scheduler.add_job(post_last_week, "cron", day_of_week="mon", hour=7, args=(sweeps.db, sweeps.outbox, sweeps.engine,
                      sweeps.settings), max_instances=1, coalesce=True)  # statistics
    scheduler.start()
    return scheduler
