"""A crash between creating a case's topic and storing its id leaves no topic that no purge will find:
the opening is recorded before Telegram is asked and its thread id right after; the case's next try
adopts the topic, and the sweep adopts it or deletes it when its case is gone."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.delivery.openings import sweep_openings
from storage import Target
from tests.fakes.telegram_api import FakeTelegram
from tests.support import OPERATOR, bot_settings, running_bot, settled


class Clock:
    """Real time from a fixed moment, plus whatever the test jumps."""

    def __init__(self) -> None:
        self.started, self.jumped = time.monotonic(), 0.0

    def __call__(self) -> datetime:
        return datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc) + timedelta(seconds=time.monotonic() - self.started + self.jumped)


async def a_case(app: Any, number: str) -> Any:
    async with app.db.transaction() as tx:
        return await tx.cases.create(number=number, kind="report", channel="telegram", language="en", country="UA",
                                     consent="counsellor", answers={"what": "x"})


async def created_then_crashed(app: Any, tg: FakeTelegram, case_id: int) -> int:
    """What a crash right after Telegram made the topic and its id was noted leaves: the topic, the
    opening with its thread id, and a case that holds no topic."""
    bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    try:
        thread = (await bot.create_forum_topic(OPERATOR, f"{case_id} · Report")).message_thread_id
    finally:
        await bot.session.close()
    async with app.db.transaction() as tx:
        opening = await tx.topic_openings.add(case_id, Target.OPERATOR, OPERATOR)
        await tx.topic_openings.opened(opening, thread)
    return thread


async def test_the_cases_next_try_adopts_the_topic_a_crash_left(tmp_path, tg: FakeTelegram) -> None:
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        case = await a_case(app, "200001")
        thread = await created_then_crashed(app, tg, case.id)
        async with app.db.transaction() as tx:  # the card's send is tried again (its lease ran out)
            await app.outbox.case_card(tx, case)
        await settled(app, tg)
        assert [topic.thread_id for topic in tg.topics(OPERATOR)] == [thread]  # no second topic
        assert any(m.from_bot and "200001" in (m.text or "") for m in tg.messages_in(OPERATOR, thread))
        async with app.db.transaction() as tx:
            assert (await tx.cases.get(case.id)).operator_topic_id == thread
            assert await tx.topic_openings.left_before(tx.now + timedelta(days=1)) == []


async def test_the_sweep_adopts_a_topic_or_deletes_it_when_its_case_is_gone(tmp_path, tg: FakeTelegram) -> None:
    clock = Clock()
    async with running_bot(bot_settings(tmp_path, tg), clock=clock) as app:
        kept, gone = await a_case(app, "200002"), await a_case(app, "200003")
        adopted, orphan = await created_then_crashed(app, tg, kept.id), await created_then_crashed(app, tg, gone.id)
        async with app.db.transaction() as tx:
            await tx.cases.delete(gone.id)  # purged (or erased) meanwhile
        assert await sweep_openings(app.db, app.outbox) == 0  # in progress, as far as anyone can tell
        clock.jumped += 11 * 60
        assert await sweep_openings(app.db, app.outbox) == 2
        await settled(app, tg)
        assert [topic.thread_id for topic in tg.topics(OPERATOR)] == [adopted]  # the orphan is deleted
        assert any(m.from_bot and "200002" in (m.text or "") for m in tg.messages_in(OPERATOR, adopted))  # its card
        async with app.db.transaction() as tx:
            assert (await tx.cases.get(kept.id)).operator_topic_id == adopted
        assert orphan != adopted


async def test_the_opening_is_recorded_before_telegram_is_asked(tmp_path, tg: FakeTelegram) -> None:
    """The connection drops on createForumTopic: whether Telegram made the topic cannot be known, and
    the opening (written before the request) stays for the sweep to settle."""
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        case = await a_case(app, "200004")
        tg.drop_next("createForumTopic", 1000)
        async with app.db.transaction() as tx:
            await app.outbox.case_card(tx, case)
        await tg.wait_for(lambda t: t.calls_of("createForumTopic"), what="the topic asked for")
        async with app.db.transaction() as tx:
            left = await tx.topic_openings.left_before(tx.now + timedelta(days=1))
        assert [(o.case_id, o.thread_id) for o in left] == [(case.id, None)]


async def test_a_topic_another_worker_is_opening_is_waited_for_not_made_twice(tmp_path, tg: FakeTelegram) -> None:
    """Two lanes of one case (its urgent items beside its ordinary ones) may be sent by two processes:
    the one that finds the other's opening in flight waits, then takes the topic it made."""
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        case = await a_case(app, "200005")
        async with app.db.transaction() as tx:  # another process has just asked Telegram for the topic
            opening = await tx.topic_openings.add(case.id, Target.OPERATOR, OPERATOR)
            await app.outbox.case_card(tx, case)
        await retried(app)
        async with app.db.transaction() as tx:
            assert (await tx.cases.get(case.id)).operator_topic_id is None  # it waits, and makes nothing
        assert tg.calls_of("createForumTopic") == []
        bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
        try:
            thread = (await bot.create_forum_topic(OPERATOR, "200005 · Report")).message_thread_id
        finally:
            await bot.session.close()
        async with app.db.transaction() as tx:  # the other process got Telegram's answer (and died)
            await tx.topic_openings.opened(opening, thread)
        await settled(app, tg)
        assert [topic.thread_id for topic in tg.topics(OPERATOR)] == [thread]
        assert any(m.from_bot and "200005" in (m.text or "") for m in tg.messages_in(OPERATOR, thread))


async def retried(app: Any) -> None:
    """Until the card has been tried and is waiting for the other worker's opening."""
    for _ in range(1000):
        async with app.db.transaction() as tx:
            if any(item.error == "topic being opened" for item in await tx.outbox.items()):
                return
        await asyncio.sleep(0.01)  # (the database has no event to wait on)
    raise TimeoutError("the card was never tried")


async def test_a_topic_asked_for_by_a_process_that_died_is_asked_again_at_once(tmp_path, tg: FakeTelegram) -> None:
    """A process killed while Telegram was creating a case's topic never answers: its opening is free as
    soon as its heartbeat is stale (not a minute later), while a live process's request is waited for."""
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        dead, alive = await a_case(app, "200011"), await a_case(app, "200012")
        async with app.db.transaction() as tx:
            await tx.heartbeats.beat("host:1:dead")
            await tx.heartbeats.gone("host:1:dead")  # as stale as a kill -9 leaves it a few seconds later
            await tx.heartbeats.beat("host:2:alive")
            await tx.topic_openings.add(dead.id, Target.OPERATOR, OPERATOR, "host:1:dead")
            await tx.topic_openings.add(alive.id, Target.OPERATOR, OPERATOR, "host:2:alive")
            await app.outbox.case_card(tx, dead)
            await app.outbox.case_card(tx, alive)
        await tg.wait_for(lambda t: any("200011" in topic.name for topic in t.topics(OPERATOR)),
                          what="the dead process's topic asked for again")
        async with app.db.transaction() as tx:
            waiting = await tx.topic_openings.current(alive.id, Target.OPERATOR)
            assert waiting is not None and await tx.topic_openings.holder_dead(waiting) is False
        assert not any("200012" in topic.name for topic in tg.topics(OPERATOR))  # still the live one's
