"""Chats the bot was not configured for: it leaves them, and ignores everything said there."""
from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ChatMemberUpdated, Message

from bot.casework import Casework
from bot.staff_chats import StaffChats
from storage import Transaction

log = logging.getLogger(__name__)
GROUPS = {ChatType.GROUP, ChatType.SUPERGROUP, ChatType.CHANNEL}


def _configured(chat_id: int, chats: StaffChats) -> bool:
    return chats.target_of(chat_id) is not None


async def on_added_to_group(update: ChatMemberUpdated, bot: Bot, tx: Transaction, staff_chats: StaffChats) -> None:
    if _configured(update.chat.id, staff_chats) or update.new_chat_member.status in ("left", "kicked"):
        return
    log.warning("left a chat it was not configured for")
    tx.after_commit(lambda: _leave(bot, update.chat.id))


async def on_group_migrated(message: Message, bot: Bot, tx: Transaction, staff_chats: StaffChats,
                            casework: Casework) -> None:
    # A group upgraded to a supergroup changes id (migrate_to_chat_id): follow it, and tell the admins.
    place = staff_chats.place_of(message.chat.id)
    staff_chats.move(message.chat.id, message.migrate_to_chat_id)
    if place is None:
        return
    setting = (f"{place.setting.split(':')[0]}=…{place.region}={message.migrate_to_chat_id}…" if place.region
               else f"{place.setting}={message.migrate_to_chat_id}")
    text = casework.engine.say(casework.lang, "operator.chat_moved", text=setting)
    tx.after_commit(lambda: _tell_admins(bot, casework.settings.admin_ids, text))


async def _tell_admins(bot: Bot, admin_ids: tuple[int, ...], text: str) -> None:
    for admin in admin_ids:
        try:
            await bot.send_message(admin, text)
        except TelegramAPIError:
            pass  # the admin never started a private chat with the bot: the log line remains


# Filters are coroutines: aiogram runs plain callables (and magic filters) in a thread, one hand-off each.
async def in_a_group(event: Message | ChatMemberUpdated) -> bool:
    return event.chat.type in GROUPS


async def migrated(message: Message) -> bool:
    return message.migrate_to_chat_id is not None


async def not_configured(message: Message, staff_chats: StaffChats) -> bool:
    return message.chat.type in GROUPS and not _configured(message.chat.id, staff_chats)


async def on_unknown_group_message(message: Message, bot: Bot, tx: Transaction) -> None:
    tx.after_commit(lambda: _leave(bot, message.chat.id))


async def _leave(bot: Bot, chat_id: int) -> None:
    # After the commit: a transaction never waits on the network.
    try:
        await bot.leave_chat(chat_id)
    except TelegramAPIError:
        pass


def groups_router() -> Router:
    """A fresh router (aiogram attaches a router to one dispatcher only)."""
    router = Router(name="groups")
    router.my_chat_member.register(on_added_to_group, in_a_group)
    router.message.register(on_group_migrated, migrated)
    router.message.register(on_unknown_group_message, not_configured)
    return router
