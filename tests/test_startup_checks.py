"""The start-up check of each staff chat: a forum supergroup where the bot may manage topics and
delete messages (retention deletes a purged case's topic), or a sentence saying what to fix."""
from __future__ import annotations

import socket

import pytest

from bot.channel import StartupError
from bot.settings import load_settings
from handlers.telegram.channel import make_bot
from handlers.telegram.checks import check_staff_chat, check_telegram
from tests.fakes.telegram_api import FakeTelegram

CHAT = -1009000000001


@pytest.mark.parametrize(("group", "says"), [
    ({"is_forum": False}, "Topics turned on"),
    ({"bot_status": "member"}, "rights to manage topics and to delete messages"),
    ({"can_delete_messages": False}, "rights to delete messages"),
    ({"can_manage_topics": False}, "rights to manage topics:"),
])
async def test_a_staff_chat_without_what_the_bot_needs_stops_the_start(group: dict, says: str) -> None:
    async with FakeTelegram(token="123:ABC") as tg:
        tg.add_group(CHAT, "Operators", **{"is_forum": True, **group})
        bot = make_bot(load_settings(_env_file=None, telegram_bot_token=tg.token, telegram_api_url=tg.base_url,
                                     operator_chat_id=CHAT))
        try:
            with pytest.raises(StartupError) as refused:
                await check_staff_chat(bot, CHAT, "OPERATOR_CHAT_ID")
        finally:
            await bot.session.close()
    assert says in str(refused.value) and f"OPERATOR_CHAT_ID={CHAT}" in str(refused.value)


@pytest.mark.parametrize("status", ["administrator", "creator"])
async def test_a_forum_where_the_bot_has_its_rights_passes(status: str) -> None:
    async with FakeTelegram(token="123:ABC") as tg:
        tg.add_group(CHAT, "Operators", is_forum=True, bot_status=status)
        bot = make_bot(load_settings(_env_file=None, telegram_bot_token=tg.token, telegram_api_url=tg.base_url,
                                     operator_chat_id=CHAT))
        try:
            await check_staff_chat(bot, CHAT, "OPERATOR_CHAT_ID")
        finally:
            await bot.session.close()


# -- before any chat: can Telegram be reached at all, with this token? -------------------------------

async def _start_check(url: str, token: str = "123:ABC") -> str:
    """What the start-up check of the Telegram channel says with TELEGRAM_API_URL=url."""
    bot = make_bot(load_settings(_env_file=None, telegram_bot_token=token, telegram_api_url=url, operator_chat_id=CHAT))
    try:
        with pytest.raises(StartupError) as refused:
            await check_telegram(bot)
            await check_staff_chat(bot, CHAT, "OPERATOR_CHAT_ID")
    finally:
        await bot.session.close()
    return str(refused.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_no_network_is_named_as_such_not_as_a_wrong_chat_id() -> None:
    async with FakeTelegram(token="123:ABC") as tg:
        url = tg.base_url
    said = await _start_check(url)  # the server is closed now
    assert said.startswith("No network: cannot connect to 127.0.0.1:") and "OPERATOR_CHAT_ID" not in said
    said = await _start_check(f"http://127.0.0.1:{_closed_port()}")  # a refused port
    assert said.startswith("No network: cannot connect") and "chat" not in said


async def test_a_name_that_does_not_resolve_is_named_as_dns() -> None:
    said = await _start_check("http://api.telegram.invalid")
    assert said.startswith("No network: the name api.telegram.invalid cannot be resolved (DNS)")


async def test_a_tls_failure_an_outage_and_a_wrong_token_are_named() -> None:
    async with FakeTelegram(token="123:ABC") as tg:
        tg.add_group(CHAT, "Operators", is_forum=True)
        assert "(TLS)" in await _start_check(tg.base_url.replace("http://", "https://"))
        tg.fail_next("getMe", 1, code=502)
        assert (await _start_check(tg.base_url)).startswith("Telegram is having an outage")
        assert (await _start_check(tg.base_url, token="123:WRONG")).startswith("TELEGRAM_BOT_TOKEN is wrong")
        tg.fail_next("getChat", 1, code=500)  # an outage during the chat's check is still an outage
        assert (await _start_check(tg.base_url)).startswith("Telegram is having an outage")
        await _pass(tg)


async def _pass(tg: FakeTelegram) -> None:
    bot = make_bot(load_settings(_env_file=None, telegram_bot_token=tg.token, telegram_api_url=tg.base_url,
                                 operator_chat_id=CHAT))
    try:
        await check_telegram(bot)
        await check_staff_chat(bot, CHAT, "OPERATOR_CHAT_ID")
    finally:
        await bot.session.close()


async def test_the_bot_is_asked_who_it_is_once_whatever_the_chats_checked() -> None:
    other = CHAT - 1
    async with FakeTelegram(token="123:ABC") as tg:
        for chat in (CHAT, other):
            tg.add_group(chat, "Staff", is_forum=True)
        bot = make_bot(load_settings(_env_file=None, telegram_bot_token=tg.token, telegram_api_url=tg.base_url,
                                     operator_chat_id=CHAT))
        try:
            await check_telegram(bot)
            await check_staff_chat(bot, CHAT, "OPERATOR_CHAT_ID")
            await check_staff_chat(bot, other, "POLICE_CHAT_ID")
        finally:
            await bot.session.close()
        asked = [call.method for call in tg.calls]
    assert asked.count("getMe") == 1 and asked.count("getChat") == 2 and asked.count("getChatMember") == 2
