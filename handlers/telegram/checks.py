"""Check the world at start: Telegram can be reached with this token, and the staff chats are forum
supergroups where the bot may manage topics. Each failure is named for what it is (no network, a
name that does not resolve, a TLS failure, Telegram's own outage, a wrong token, a wrong chat id),
so that nobody looks for a wrong chat id when the network is down."""
from __future__ import annotations

import asyncio
from urllib.parse import urlparse

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError, TelegramNetworkError, TelegramNotFound, TelegramServerError, TelegramUnauthorizedError,
)
from aiogram.methods import GetMe

from bot.channel import StartupError

# Words of aiohttp's errors (as aiogram passes them on) and what they mean.
DNS_WORDS = ("DNSError", "Name or service not known", "nodename nor servname", "name resolution", "getaddrinfo")
TLS_WORDS = ("SSL", "Certificate", "certificate")


async def check_telegram(bot: Bot) -> None:
    """Telegram answers, and knows this token; else a StartupError naming what is wrong."""
    try:
        await bot.get_me()
    except TelegramAPIError as error:
        raise unreachable(bot, error) or StartupError(
            f"Telegram refused the bot's first request ({type(error).__name__}). Check TELEGRAM_BOT_TOKEN.") from None


def unreachable(bot: Bot, error: TelegramAPIError) -> StartupError | None:
    """The StartupError for a failure that is not about a chat (network, DNS, TLS, Telegram, token)."""
    host = urlparse(bot.session.api.base).netloc or "api.telegram.org"
    if isinstance(error, TelegramUnauthorizedError):
        return StartupError("TELEGRAM_BOT_TOKEN is wrong: Telegram does not know this token (401 Unauthorized). "
                            "Copy it again from @BotFather (/mybots → API Token).")
    if isinstance(error, TelegramNotFound) and isinstance(error.method, GetMe):
        return StartupError(f"TELEGRAM_BOT_TOKEN or TELEGRAM_API_URL is wrong: {host} answers 404 Not Found "
                            "for this bot. Copy the token again from @BotFather.")
    if isinstance(error, TelegramServerError):
        return StartupError(f"Telegram is having an outage: {host} answers with a server error (5xx). Nothing is "
                            "wrong with the settings; start again in a few minutes (systemd does it by itself).")
    if isinstance(error, TelegramNetworkError):
        said = error.message
        if any(word in said for word in DNS_WORDS):
            return StartupError(f"No network: the name {host} cannot be resolved (DNS). Check this server's "
                                "internet connection and DNS settings (TELEGRAM_API_URL, if set).")
        if any(word in said for word in TLS_WORDS):
            return StartupError(f"The secure connection (TLS) to {host} failed. Check the server's clock, its "
                                "CA certificates, any proxy that intercepts HTTPS, and TELEGRAM_API_URL, if set.")
        if "timeout" in said.lower():
            return StartupError(f"No network: {host} did not answer in time. Check this server's internet "
                                "connection and firewall.")
        return StartupError(f"No network: cannot connect to {host} (connection refused or reset). Check this "
                            "server's internet connection, firewall and proxy (TELEGRAM_API_URL, if set).")
    return None


async def check_staff_chat(bot: Bot, chat_id: int, setting: str) -> None:
    # Both questions at once (the bot's id is in its token): at start every round trip to Telegram counts.
    chat, member = await asyncio.gather(bot.get_chat(chat_id), bot.get_chat_member(chat_id, bot.id),
                                        return_exceptions=True)
    error = next((found for found in (chat, member) if isinstance(found, BaseException)), None)
    if isinstance(error, TelegramAPIError):
        if isinstance(error, (TelegramNetworkError, TelegramServerError, TelegramUnauthorizedError)):
            raise unreachable(bot, error) from None
        raise StartupError(
            f"{setting}={chat_id}: the bot cannot open this chat ({error.message}). Add the bot to the group, "
            f"and check the id (a supergroup id starts with -100)."
        ) from None
    if error is not None:
        raise error
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
