"""/stats in the operator chat's General topic, and the Monday figures the scheduler posts there.

`/stats [week|month|2026-11|2026-11-01..2026-11-30]` (admins and coordinators) answers with one chart
and a short text. The counters are read inside the update's transaction; the chart is drawn after
the commit, in a thread (a few hundred milliseconds of CPU), and sent as a reply like the other staff
commands' answers: a transaction never waits for it, and a reply lost to a crash is asked for again.
"""
from __future__ import annotations

import asyncio

from aiogram import Router
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import BufferedInputFile, Message

from bot.casework import Casework
from bot.staff_chats import StaffChats
from bot.statistics.period import Period, PeriodError, parse_period
from bot.statistics.report import message as statistics_message
from storage import Role, StatCount, Transaction

ALLOWED = frozenset({Role.ADMIN, Role.COORDINATOR})
CHART_FILE = "oberih-statistics.png"


class InOperatorChat(Filter):
    async def __call__(self, message: Message, staff_chats: StaffChats) -> bool:
        return message.chat.id == staff_chats.operator


async def on_stats(message: Message, command: CommandObject, tx: Transaction, casework: Casework) -> None:
    engine, lang = casework.engine, casework.lang
    actor = await casework.actor(tx, message.from_user.id) if message.from_user else None
    if actor is None or actor.role not in ALLOWED:
        _reply(tx, message, engine.say(lang, "stats.error.refused"))
        return
    if message.is_topic_message:
        _reply(tx, message, engine.say(lang, "stats.error.topic"))
        return
    try:
        period = parse_period(command.args, tx.now.date())
    except PeriodError as error:
        _reply(tx, message, engine.say(lang, error.key))
        return
    counts = await tx.stats.between(period.first, period.last)
    tx.after_commit(lambda: _send(message, counts, period, casework))


async def _send(message: Message, counts: list[StatCount], period: Period, casework: Casework) -> None:
    made = await asyncio.to_thread(statistics_message, counts, period, casework.settings, casework.engine)
    if made.chart is None:
        await message.reply(casework.engine.say(casework.lang, "stats.error.no_data"))
    else:
        await message.reply_photo(BufferedInputFile(made.chart, CHART_FILE), caption=made.text)


def _reply(tx: Transaction, message: Message, text: str) -> None:
    tx.after_commit(lambda: message.reply(text))


def statistics_router() -> Router:
    """A fresh router: before the staff router, whose catch-all would take /stats in General."""
    router = Router(name="statistics")
    router.message.filter(InOperatorChat())
    router.message.register(on_stats, Command("stats"))
    return router
