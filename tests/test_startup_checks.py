"""The start-up check of each staff chat: a forum supergroup where the bot may manage topics and
delete messages (retention deletes a purged case's topic), or a sentence saying what to fix."""
from __future__ import annotations

import pytest

from bot.channel import StartupError
from bot.settings import load_settings
from handlers.telegram.channel import make_bot
from handlers.telegram.checks import check_staff_chat
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
