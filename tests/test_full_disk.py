"""A full disk stops acknowledging updates: nothing is confirmed to Telegram that was not stored (a
webhook answers 503, polling keeps its offset), the log says so once, and when space returns the same
update - sent again by Telegram - is stored and answered."""
from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest

from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.viber_api import text_event
from tests.support import Child, bot_settings, running_bot, settled
from tests.test_viber import World, world

CHILD = 631
SECRET = "s3cret-token-of-at-least-32-chars_0123"
FIXTURES = (world,)  # the Viber world, a fixture of tests/test_viber.py
LONG_STORY = "They keep writing to me at night and I do not know what to do. " * 300  # needs new pages


def no_room(connection: Any) -> None:
    """The database may not grow by a page: as a full disk is to SQLite."""
    pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
    connection.exec_driver_sql(f"PRAGMA max_page_count = {pages}")


def room_again(connection: Any) -> None:
    connection.exec_driver_sql("PRAGMA max_page_count = 1073741823")


def full_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.storage_watch" and "full" in r.getMessage()]


async def to_the_story_step(child: Child) -> None:
    await child.send("/start")
    await child.press("menu.report")
    await child.press("category.bullying")


async def test_polling_on_a_full_disk_confirms_nothing_says_so_once_and_goes_on(tmp_path, tg: FakeTelegram,
                                                                                 caplog: pytest.LogCaptureFixture) -> None:
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, CHILD)
        await to_the_story_step(child)
        asked = len(child.inbox)
        await app.db.run_sync(no_room)
        caplog.set_level(logging.WARNING)
        story = tg.user_sends_text(CHILD, LONG_STORY)
        polls = len(tg.calls_of("getUpdates"))
        await tg.wait_for(lambda t: len(t.calls_of("getUpdates")) >= polls + 3, what="Telegram asked again")
        assert any(u["update_id"] == story.update_id for u in tg.pending)  # not confirmed
        assert len(child.inbox) == asked and len(full_lines(caplog)) == 1
        await app.db.run_sync(room_again)
        await settled(app, tg)
        assert len(child.inbox) > asked  # the story was stored and the next question asked
        assert any(r.getMessage() == "updates are stored again" for r in caplog.records)


async def test_a_webhook_on_a_full_disk_answers_503_and_200_once_space_returns(tmp_path, tg: FakeTelegram,
                                                                               caplog: pytest.LogCaptureFixture) -> None:
    settings = bot_settings(tmp_path, tg, telegram_webhook_url="https://bot.example.org/tg/hook",
                            telegram_webhook_secret=SECRET)
    async with running_bot(settings) as app:
        await tg.wait_for(lambda t: t.webhook)
        host, port = app.runner.addresses[0][:2]
        url, headers = f"http://{host}:{port}/tg/hook", {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        child = Child(app, tg, CHILD)
        async with aiohttp.ClientSession() as http:

            async def deliver() -> list[int]:
                """What Telegram does with a webhook: post each new update until it is answered 200."""
                statuses = []
                for update in list(tg.pending):
                    async with http.post(url, json=update, headers=headers) as response:
                        statuses.append(response.status)
                        if response.status == 200:
                            tg.pending.remove(update)
                return statuses

            tg.user_sends_text(CHILD, "/start")
            for button in (None, "menu.report", "category.bullying"):
                if button is not None:
                    tg.user_presses_button(CHILD, child.inbox[-1], text=child.label(button))
                assert await deliver() == [200]
                await settled(app, tg)
            asked = len(child.inbox)
            await app.db.run_sync(no_room)
            caplog.set_level(logging.WARNING)
            tg.user_sends_text(CHILD, LONG_STORY)
            assert await deliver() == [503] and await deliver() == [503]  # and again: not stored, not confirmed
            async with app.db.transaction() as tx:
                assert await tx.inbox.last_external_id("telegram") != str(tg.pending[0]["update_id"])
            assert len(full_lines(caplog)) == 1
            await app.db.run_sync(room_again)
            assert await deliver() == [200]
        await settled(app, tg)
        assert len(child.inbox) > asked


async def test_a_viber_webhook_on_a_full_disk_answers_503_and_200_once_space_returns(world: World) -> None:
    await world.app.db.run_sync(no_room)
    status, _ = await world.post(text_event("viber-child-1", LONG_STORY))
    assert status == 503  # the whole event is stored before 200: here it cannot be
    await world.app.db.run_sync(room_again)
    await world.send("viber-child-1", LONG_STORY)  # Viber's redelivery: 200 once stored
