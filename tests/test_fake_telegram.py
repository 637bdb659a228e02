"""The fake Telegram Bot API server, driven by the real aiogram Bot over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
)

from tests.fakes.telegram_api import FakeTelegram

TOKEN = "123:ABC"
CHILD = 4242
OPERATOR = 7
OPS_GROUP = -1001234567890


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
    bot = Bot(TOKEN, session=session)
    try:
        yield bot
    finally:
        await bot.session.close()


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=text, callback_data=data)] for text, data in pairs])


async def test_get_me(bot: Bot, tg: FakeTelegram) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123, True, "oberih_test_bot")
    assert [c.method for c in tg.calls] == ["getMe"]


async def test_send_message_with_inline_keyboard_and_button_press(bot: Bot,
                                                                  tg: FakeTelegram) -> None:
    tg.add_user(CHILD)
    sent = await bot.send_message(CHILD, "<b>Привіт!</b> Що сталося?", parse_mode="HTML",
                                  reply_markup=keyboard(("Мене ображають", "bully"),
                                                        ("Інше", "other")))
    assert sent.text == "Привіт! Що сталося?"  # markup parsed into entities, like Telegram
    assert sent.entities is not None and sent.entities[0].type == "bold"
    stored = tg.last_message(CHILD)
    assert stored is not None and stored.from_bot and stored.message_id == sent.message_id
    assert tg.inline_buttons(stored) == [("Мене ображають", "bully"), ("Інше", "other")]
    assert tg.calls_of("sendMessage")[0].params["reply_markup"]["inline_keyboard"][0][0][
        "callback_data"] == "bully"  # JSON fields arrive decoded

    update = tg.user_presses_button(CHILD, stored, text="Інше")
    query = update["callback_query"]
    assert query["data"] == "other" and query["message"]["message_id"] == sent.message_id
    assert await bot.answer_callback_query(query["id"], text="OK")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query["id"])  # answered twice


async def test_polling_receives_update_and_offset_confirms_it(bot: Bot,
                                                              tg: FakeTelegram) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_for(lambda t: t.calls_of("getUpdates"))  # the long poll is waiting
    msg = tg.user_sends_text(CHILD, "/start", language_code="uk")
    updates = await poll  # woken by the injected update, not by the 30 s timeout
    assert [u.update_id for u in updates] == [msg.update_id]
    message = updates[0].message
    assert message is not None and message.text == "/start"
    assert message.entities is not None and message.entities[0].type == "bot_command"
    assert message.from_user is not None and message.from_user.language_code == "uk"

    # Without a higher offset the update is delivered again; with it, it is confirmed.
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [msg.update_id]
    assert await bot.get_updates(offset=msg.update_id + 1, timeout=0) == []
    assert tg.pending == []


async def test_a_second_poll_terminates_the_first_with_conflict(bot: Bot,
                                                                tg: FakeTelegram) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_for(lambda t: t.calls_of("getUpdates"))
    second = asyncio.create_task(bot.get_updates(timeout=30))
    with pytest.raises(TelegramConflictError):
        await first
    tg.user_sends_text(CHILD, "hi")
    assert len(await second) == 1


async def test_copy_message_copies_photo_into_forum_topic(bot: Bot, tg: FakeTelegram) -> None:
    tg.add_group(OPS_GROUP, "Operators", is_forum=True)
    topic = await bot.create_forum_topic(OPS_GROUP, "Case #1")
    assert topic.message_thread_id != 1  # 1 is the General topic
    photo = tg.user_sends_photo(CHILD, caption="screenshot")

    copied = await bot.copy_message(OPS_GROUP, CHILD, photo.message_id,
                                    message_thread_id=topic.message_thread_id,
                                    caption="Case #1: screenshot")
    [stored] = tg.sent_to(OPS_GROUP, thread_id=topic.message_thread_id)
    assert stored.message_id == copied.message_id and stored.kind == "photo"
    assert stored.data["photo"] == photo.data["photo"]  # same file, no re-upload
    assert stored.caption == "Case #1: screenshot"
    assert "forward_origin" not in stored.data
    assert tg.calls_of("forwardMessage") == []

    # Quirk: an operator's plain message in a topic "replies" to the topic creation message.
    reply = tg.user_sends_text(OPERATOR, "on it", chat_id=OPS_GROUP,
                               thread_id=topic.message_thread_id)
    assert reply.data["reply_to_message"]["forum_topic_created"]["name"] == "Case #1"


async def test_deleted_topic_answers_thread_not_found(bot: Bot, tg: FakeTelegram) -> None:
    tg.add_group(OPS_GROUP, "Operators")
    topic = await bot.create_forum_topic(OPS_GROUP, "Case #2")
    await bot.send_message(OPS_GROUP, "note", message_thread_id=topic.message_thread_id)
    assert [t.name for t in tg.topics(OPS_GROUP)] == ["Case #2"]

    assert await bot.delete_forum_topic(OPS_GROUP, topic.message_thread_id)
    assert tg.topics(OPS_GROUP) == [] and tg.sent_to(OPS_GROUP) == []
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(OPS_GROUP, "late", message_thread_id=topic.message_thread_id)


async def test_topic_management_quirks(bot: Bot, tg: FakeTelegram) -> None:
    tg.add_group(OPS_GROUP, "Operators")
    topic = await bot.create_forum_topic(OPS_GROUP, "Case #3")
    assert await bot.close_forum_topic(OPS_GROUP, topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="TOPIC_NOT_MODIFIED"):
        await bot.close_forum_topic(OPS_GROUP, topic.message_thread_id)
    assert await bot.edit_forum_topic(OPS_GROUP, topic.message_thread_id, name="Case #3 ✅")
    assert tg.topics(OPS_GROUP)[0].closed and tg.topics(OPS_GROUP)[0].name == "Case #3 ✅"

    tg.add_group(-100777, "Not a forum", is_forum=False)
    with pytest.raises(TelegramBadRequest, match="not a forum"):
        await bot.create_forum_topic(-100777, "x")


async def test_429_surfaces_as_retry_after(bot: Bot, tg: FakeTelegram) -> None:
    tg.add_user(CHILD)
    tg.fail_next("sendMessage", code=429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(CHILD, "hello")
    assert caught.value.retry_after == 3
    assert tg.sent_to(CHILD) == [] and tg.calls_of("sendMessage")[0].injected == "fail"
    await bot.send_message(CHILD, "hello")  # the fault was for one call only
    assert len(tg.sent_to(CHILD)) == 1


async def test_server_errors_and_dropped_connections(bot: Bot, tg: FakeTelegram) -> None:
    tg.add_user(CHILD)
    tg.fail_next("sendMessage", code=500)
    tg.drop_next("sendMessage")
    with pytest.raises(TelegramServerError):
        await bot.send_message(CHILD, "one")
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(CHILD, "two")
    await bot.send_message(CHILD, "three")
    assert [m.text for m in tg.sent_to(CHILD)] == ["three"]


async def test_random_faults_are_deterministic_per_seed(bot: Bot, tg: FakeTelegram) -> None:
    tg.add_user(CHILD)

    async def outcomes() -> list[str]:
        tg.set_fault_rate(0.5, seed=7, codes=(429, 500), methods=["sendMessage"])
        result = []
        for i in range(12):
            try:
                await bot.send_message(CHILD, f"m{i}")
                result.append("ok")
            except (TelegramRetryAfter, TelegramServerError) as exc:
                result.append(type(exc).__name__)
        return result

    first, second = await outcomes(), await outcomes()
    assert first == second and "ok" in first and len(set(first)) > 1
    tg.set_fault_rate(0)
    await bot.get_me()


async def test_rate_limits_when_enforced(bot: Bot, tg: FakeTelegram) -> None:
    tg.add_user(CHILD)
    tg.enforce_limits(per_chat_per_sec=1)
    await bot.send_message(CHILD, "first")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(CHILD, "too soon")
    assert caught.value.retry_after == 1
    tg.advance_time(1.0)  # the fake's clock, no sleeping
    await bot.send_message(CHILD, "later")
    assert [m.text for m in tg.sent_to(CHILD)] == ["first", "later"]


async def test_blocked_user_gives_forbidden(bot: Bot, tg: FakeTelegram) -> None:
    tg.block_bot(CHILD)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(CHILD, "are you there?")
    assert tg.pending[-1]["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999_999, "nobody")


async def test_send_media_group(bot: Bot, tg: FakeTelegram) -> None:
    tg.add_user(CHILD)
    earlier = tg.user_sends_photo(CHILD)
    album = await bot.send_media_group(CHILD, [
        InputMediaPhoto(media=BufferedInputFile(b"\x89PNG fake", "a.png"), caption="1/2",
                        has_spoiler=True),
        InputMediaPhoto(media=earlier.data["photo"][-1]["file_id"]),
    ])
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
    assert album[0].has_media_spoiler and not album[1].has_media_spoiler
    assert album[0].caption == "1/2"
    upload = tg.calls_of("sendMediaGroup")[0].uploads
    assert [content for _, content in upload.values()] == [b"\x89PNG fake"]

    # copyMessages keeps an album together under a fresh media_group_id
    tg.add_group(OPS_GROUP, "Operators")
    ids = await bot.copy_messages(OPS_GROUP, CHILD, [m.message_id for m in album])
    copies = [tg.message(OPS_GROUP, i.message_id) for i in ids]
    groups = {c.media_group_id for c in copies if c is not None}
    assert len(groups) == 1 and groups != {album[0].media_group_id}


async def test_telegram_validation_errors(bot: Bot, tg: FakeTelegram) -> None:
    tg.add_user(CHILD)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHILD, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(CHILD, "x", reply_markup=keyboard(("b", "d" * 65)))
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(CHILD, "1 < 2", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(CHILD, BufferedInputFile(b"p", "p.jpg"), caption="c" * 1025)
    sent = await bot.send_message(CHILD, "x", reply_markup=keyboard(("b", "d")))
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("x", chat_id=CHILD, message_id=sent.message_id,
                                    reply_markup=keyboard(("b", "d")))
    # Quirk: editing without reply_markup drops the keyboard.
    await bot.edit_message_text("x", chat_id=CHILD, message_id=sent.message_id)
    assert tg.inline_buttons(tg.message(CHILD, sent.message_id) or {}) == []
    assert tg.sent_to(CHILD) == [tg.message(CHILD, sent.message_id)]


async def test_group_migration(bot: Bot, tg: FakeTelegram) -> None:
    first, second = tg.group_migrated(-55, -1005555)
    assert first["message"]["migrate_to_chat_id"] == -1005555
    assert second["message"]["migrate_from_chat_id"] == -55
    with pytest.raises(TelegramMigrateToChat) as caught:
        await bot.send_message(-55, "hello")
    assert caught.value.migrate_to_chat_id == -1005555
    await bot.send_message(-1005555, "hello")


async def test_unknown_method_and_wait_for_timeout(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}/bot{TOKEN}/sendTelepathy", data={"x": "1"}) as r:
            assert r.status == 404
            assert (await r.json())["description"] == "Not Found: method not found"
    assert [c.method for c in tg.unknown_calls] == ["sendTelepathy"]
    with pytest.raises(TimeoutError, match="sendTelepathy"):
        await tg.wait_for(lambda t: t.calls_of("sendMessage"), timeout=0.01)


async def test_stop_releases_a_waiting_long_poll(bot: Bot, tg: FakeTelegram) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_for(lambda t: t.calls_of("getUpdates"))
    await tg.stop()
    assert await poll == []
