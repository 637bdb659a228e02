"""Chats the bot was not configured for: it leaves them, and ignores everything said there."""
from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ChatMemberUpdated, Message

from handlers.telegram.sender import StaffChats

log = logging.getLogger(__name__)
GROUPS = {ChatType.GROUP, ChatType.SUPERGROUP, ChatType.CHANNEL}


def _configured(chat_id: int, chats: StaffChats) -> bool:
    return chat_id in (chats.operator, chats.police)


async def on_added_to_group(update: ChatMemberUpdated, bot: Bot, tx: Any, staff_chats: StaffChats) -> None:
    if _configured(update.chat.id, staff_chats) or update.new_chat_member.status in ("left", "kicked"):
        return
    log.warning("left a chat it was not configured for")
    tx.after_commit(lambda: _leave(bot, update.chat.id))


async def on_group_migrated(message: Message, staff_chats: StaffChats) -> None:
    # A group upgraded to a supergroup changes id (migrate_to_chat_id): follow it, and tell the admin.
    new_id = message.migrate_to_chat_id
    for target in ("operator", "police"):
        if staff_chats.of(target) == message.chat.id:
            log.error("the %s chat moved to a new id: set %s_CHAT_ID=%s", target, target.upper(), new_id)
            setattr(staff_chats, target, new_id)


# Filters are coroutines: aiogram runs plain callables (and magic filters) in a thread, one hand-off each.
async def in_a_group(event: Message | ChatMemberUpdated) -> bool:
    return event.chat.type in GROUPS


async def migrated(message: Message) -> bool:
    return message.migrate_to_chat_id is not None


async def not_configured(message: Message, staff_chats: StaffChats) -> bool:
    return message.chat.type in GROUPS and not _configured(message.chat.id, staff_chats)


async def on_unknown_group_message(message: Message, bot: Bot, tx: Any) -> None:
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
