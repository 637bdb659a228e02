"""`/transfer REGION` in a case topic and `/queue` in a staff chat's General topic (README, Regions).

Registered on the staff router (handlers/telegram/staff.py), so they are heard in every configured
chat, each chat knowing its region. Every refusal is a clear reply that changes nothing.
"""
from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import CommandObject
from aiogram.types import Message

from bot.casework import Casework
from bot.permissions import SEE_QUEUE
from bot.queue import queue_text
from bot.staff_chats import ChatPlace, StaffChats, topic_case
from bot.transfer import Moved, TransferRefused, transfer
from storage import Target, Transaction

log = logging.getLogger(__name__)


async def on_transfer(message: Message, command: CommandObject, tx: Transaction, casework: Casework,
                      place: ChatPlace, staff_chats: StaffChats) -> None:
    say, lang = casework.engine.say, casework.lang
    actor = await casework.actor(tx, message.from_user.id) if message.from_user else None
    if actor is None:
        _reply(tx, message, say(lang, "operator.transfer.refused"))
        return
    in_topic = message.is_topic_message and message.message_thread_id is not None
    case = await topic_case(tx, place, staff_chats, message.message_thread_id) if in_topic else None
    if case is None or place.target is not Target.OPERATOR:
        _reply(tx, message, say(lang, "operator.transfer.usage", list=", ".join(sorted(staff_chats.operator_regions)) or "—"))
        return
    try:
        moved = await transfer(tx, casework.engine, casework.outbox, staff_chats, actor, case, command.args or "")
    except TransferRefused as refusal:
        _reply(tx, message, say(lang, refusal.key, **refusal.slots))
        return
    log.info("case transferred", extra={"case": case.number})
    tx.after_commit(lambda: _close_old_topics(message.bot, staff_chats, case.region, moved))


async def on_queue(message: Message, tx: Transaction, casework: Casework, place: ChatPlace,
                   staff_chats: StaffChats) -> None:
    say, lang = casework.engine.say, casework.lang
    actor = await casework.actor(tx, message.from_user.id) if message.from_user else None
    if actor is None or actor.role not in SEE_QUEUE:
        _reply(tx, message, say(lang, "operator.queue.refused"))
        return
    if message.is_topic_message:
        _reply(tx, message, say(lang, "operator.queue.general_only"))
        return
    settings = casework.settings
    _reply(tx, message, await queue_text(tx, casework.engine, staff_chats, place, settings.sla_minutes,
                                         settings.urgent_sla_minutes))


async def _close_old_topics(bot: Bot | None, chats: StaffChats, old_region: str | None, moved: Moved) -> None:
    """The old topics are told where the case went, then closed (a courtesy: the case itself moved
    durably with its commit)."""
    if bot is None:
        return
    for target, topic in moved.old_topics.items():
        chat = chats.of(target, old_region)
        if chat is None:
            continue
        try:
            await bot.send_message(chat, moved.notice, message_thread_id=topic, protect_content=True)
            await bot.close_forum_topic(chat, topic)
        except TelegramAPIError as error:
            log.warning("the old topic of a transferred case could not be told or closed",
                        extra={"case": moved.case.number, "reason": error.message})


def _reply(tx: Transaction, message: Message, text: str) -> None:
    tx.after_commit(lambda: message.reply(text))
