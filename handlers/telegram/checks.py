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
    # The creator holds every right; an administrator needs these two: a topic is opened for each case,
    # and deleted with everything in it when the case is purged (retention must really happen).
    missing = [] if member.status == "creator" else [
        words for right, words in (("can_manage_topics", "manage topics"), ("can_delete_messages", "delete messages"))
        if member.status != "administrator" or not getattr(member, right, False)]
    if missing:
        raise StartupError(
            f"{setting}={chat_id}: make the bot an administrator with the rights to {' and to '.join(missing)}: "
            f"it opens a topic for each case and deletes it with everything in it when the case is purged."
        )
