"""The lean Bot API calls (a child's messages, a button's spinner) against the fake server: what
arrives, and that every failure is the same aiogram error the delivery worker already handles."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramNetworkError, TelegramRetryAfter

from handlers.telegram import lean_api
from tests.fakes.telegram_api import FakeTelegram
from tests.support import TOKEN

CHILD = 4242


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    tg.add_user(CHILD)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    yield bot
    await bot.session.close()


async def test_a_text_with_buttons_arrives_as_sent(tg: FakeTelegram, bot: Bot) -> None:
    message_id = await lean_api.send_text(bot, CHILD, "Привіт 👋 <b>not markup</b>", [[("Yes", "y"), ("No", "n")], [("Back", "b")]])
    (message,) = tg.sent_to(CHILD)
    assert message.message_id == message_id
    assert message.text == "Привіт 👋 <b>not markup</b>"
    assert FakeTelegram.inline_buttons(message) == [("Yes", "y"), ("No", "n"), ("Back", "b")]
    assert tg.calls[-1].params["link_preview_options"] == {"is_disabled": True}


async def test_no_buttons_means_no_keyboard(tg: FakeTelegram, bot: Bot) -> None:
    await lean_api.send_text(bot, CHILD, "plain", [])
    assert "reply_markup" not in tg.calls[-1].params


async def test_the_spinner_is_answered(tg: FakeTelegram, bot: Bot) -> None:
    await lean_api.send_text(bot, CHILD, "pick", [[("A", "a")]])
    query_id = tg.user_presses_button(CHILD, tg.sent_to(CHILD)[-1], text="A")["callback_query"]["id"]
    await lean_api.answer_callback(bot, query_id)
    assert query_id in tg.callback_answers


async def test_failures_are_aiograms_errors(tg: FakeTelegram, bot: Bot) -> None:
    tg.fail_next("sendMessage", code=429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as too_many:
        await lean_api.send_text(bot, CHILD, "hi")
    assert too_many.value.retry_after == 7

    tg.drop_next("sendMessage")
    with pytest.raises(TelegramNetworkError):
        await lean_api.send_text(bot, CHILD, "hi")

    with pytest.raises(TelegramBadRequest):
        await lean_api.send_text(bot, CHILD, "")  # Telegram refuses an empty text

    tg.block_bot(CHILD)
    with pytest.raises(TelegramForbiddenError):
        await lean_api.send_text(bot, CHILD, "hi")
    assert tg.sent_to(CHILD) == []
