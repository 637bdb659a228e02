"""Check the world at start: the staff chats must be forum supergroups where the bot may manage topics."""
from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.channel import StartupError


async def check_staff_chat(bot: Bot, chat_id: int, setting: str) -> None:
    try:
        chat = await bot.get_chat(chat_id)
        me = await bot.get_me()
        member = await bot.get_chat_member(chat_id, me.id)
    except TelegramAPIError as error:
        raise StartupError(
            f"{setting}={chat_id}: the bot cannot open this chat ({error.message}). Add the bot to the group, "
            f"and check the id (a supergroup id starts with -100)."
        ) from None
    if chat.type != "supergroup" or not chat.is_forum:
        raise StartupError(
            f"{setting}={chat_id}: this chat must be a supergroup with Topics turned on "
            f"(group settings → Topics). Each case gets its own topic there."
        )
    if member.status not in ("administrator", "creator") or not getattr(member, "can_manage_topics", True):
        raise StartupError(
            f"{setting}={chat_id}: make the bot an administrator with the right to manage topics "
            f"(and to delete messages), so it can open a topic for each case."
        )
