"""SLA reminders, check-ins and the retention purge follow a case to its region's chat."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.build import Service as App
from tests.fakes.telegram_api import FakeTelegram
from tests.resilience_support import drained
from tests.support import ADMIN, OPERATOR, Child, Staff, bot_settings, card_of, grant, running_bot, settled
from tests.test_regions_routing import CHATS, KYIV, LVIV, report_from
from tests.test_sweeps import MovableClock


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def bot(tmp_path, tg, clock) -> AsyncIterator[App]:
    for chat, title in ((KYIV, "Kyiv operators"), (LVIV, "Lviv operators")):
        tg.add_group(chat, title, is_forum=True)
    async with running_bot(bot_settings(tmp_path, tg, operator_chats=CHATS), clock=clock) as app:
        yield app


def lines(tg: FakeTelegram, chat: int, text: str, thread: int | None = None, general: bool = False) -> int:
    return sum(1 for m in tg.sent_to(chat, thread) if text in (m.text or "") and (not general or m.thread_id is None))


async def test_sla_reminders_check_ins_and_purges_happen_in_the_cases_own_chat(bot, tg, clock):
    app, say = bot, bot.engine.say
    await report_from(Child(app, tg, 681), "Kyiv")
    number, topic = tg.topics(KYIV)[0].name.split(" · ")[0], tg.topics(KYIV)[0].thread_id
    for minutes in (61, 60):
        clock.advance(minutes=minutes)
        await app.sweeps.every_minute()
        await settled(app, tg)
    assert lines(tg, KYIV, say("en", "operator.notice.sla", minutes=60), topic) == 1
    assert lines(tg, KYIV, say("en", "operator.notice.sla_admins", case_number=number, minutes=120), general=True) == 1
    assert not lines(tg, OPERATOR, number)  # nothing of it in the default chat

    admin, counsellor = Staff(app, tg, ADMIN, "Ada", chat=KYIV), Staff(app, tg, 800031, "Oksana", chat=KYIV)
    await grant(admin, counsellor, "counsellor")
    await counsellor.press(card_of(tg, KYIV), "operator.button.take")
    clock.advance(days=app.settings.checkin_days, minutes=1)
    await app.sweeps.every_minute()
    await settled(app, tg)
    assert lines(tg, KYIV, say("en", "operator.notice.checkin_sent"), topic) == 1

    await counsellor.press(card_of(tg, KYIV), "operator.button.close")
    await counsellor.press(card_of(tg, KYIV), "operator.outcome.advice")
    clock.advance(days=app.settings.retention_days + 1)
    await app.sweeps.every_hour()
    await drained(app, tg)  # (the hourly sweep forgot the handled updates: settled cannot tell)
    assert not tg.topics(KYIV)  # the purged case's topic deleted in Kyiv's chat
    assert tg.topics(OPERATOR) == []
