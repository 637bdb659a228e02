"""Counsellors and police receive consented reports in forum topics and answer the child anonymously."""
from __future__ import annotations

import json
import re

import pytest

from tests.fakes.telegram_api import FakeTelegram
from tests.support import (
    ADMIN, OPERATOR, POLICE, Child, Staff, bot_settings, card_of, grant, report, running_bot, settled,
)

CHILD = 601


@pytest.fixture
async def world(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        admin = Staff(app, tg, ADMIN, "Ada")
        moderator = Staff(app, tg, 800002, "Mira")
        counsellor = Staff(app, tg, 800003, "Olena")
        police = Staff(app, tg, 800004, "Petro", chat=POLICE)
        tg.add_member(POLICE, ADMIN, "administrator")
        await grant(admin, moderator, "moderator")
        await grant(admin, counsellor, "counsellor")
        police_admin = Staff.__new__(Staff)
        police_admin.__dict__.update(admin.__dict__, chat=POLICE)
        await grant(police_admin, police, "police")
        yield app, admin, moderator, counsellor, police


def everything_staff_saw(tg: FakeTelegram) -> str:
    calls = [c for c in tg.calls if c.params.get("chat_id") in (OPERATOR, POLICE, str(OPERATOR), str(POLICE))]
    return json.dumps([c.params for c in calls], ensure_ascii=False) + json.dumps(
        [m.data for chat in (OPERATOR, POLICE) for m in tg.messages_in(chat)], ensure_ascii=False)


async def test_a_case_goes_from_card_to_answer_without_revealing_anyone(world, tg):
    app, admin, moderator, counsellor, police = world
    child = Child(app, tg, CHILD, first_name="Sofiia")
    sent = await report(child, consent="consent.police")
    number = tg.topics(OPERATOR)[-1].name.split(" · ")[0]
    assert number in sent.text

    card = card_of(tg)
    assert "They post mean comments" in card.text and card.params.get("protect_content")
    await moderator.press(card, "operator.button.accept")
    assert "Accepted" in tg.message(OPERATOR, card.message_id).text
    await counsellor.press(card, "operator.button.take")
    assert "Olena" in tg.message(OPERATOR, card.message_id).text  # the alias, for staff only
    assert child.texts()[-1] == app.engine.say("en", "notice.taken", case_number=number)

    topic = tg.topics(OPERATOR)[-1].thread_id
    await counsellor.write("Hi, I'm here to help. Are you safe right now?", thread_id=topic)
    assert child.texts()[-1].endswith("Are you safe right now?")
    assert "Olena" not in child.texts()[-1] and child.texts()[-1].startswith("💬")

    await counsellor.write("// internal: check the school's policy", thread_id=topic)
    assert "internal" not in child.texts()[-1]

    await child.send("Yes, I'm at home")
    relayed = tg.messages_in(OPERATOR, topic)[-1]
    assert relayed.from_bot and "Yes, I'm at home" in relayed.text and relayed.params.get("protect_content")

    await counsellor.press(card, "operator.button.escalate")
    police_topic = tg.topics(POLICE)[-1]
    assert number in police_topic.name
    police_card = card_of(tg, POLICE)
    assert "They post mean comments" in police_card.text
    await police.write("We have opened a case. You did the right thing.", thread_id=police_topic.thread_id)
    assert child.texts()[-1].startswith("👮")

    await counsellor.press(card, "operator.button.close")
    await counsellor.press(card, "operator.outcome.advice")
    assert child.texts()[-1] == app.engine.say("en", "notice.closed", case_number=number)
    await child.press("rating.good")

    async with app.db.transaction() as tx:
        case = await tx.cases.by_number(number)
        audit = [entry.action for entry in await tx.audit.for_case(case.id)]
    assert case.status == "closed" and case.outcome == "advice" and case.rating == 3
    assert {"submitted", "accept", "take", "answer", "escalate", "outcome"} <= set(audit)

    staff_saw = everything_staff_saw(tg)
    assert not re.search(rf"(?<!\d){CHILD}(?!\d)", staff_saw)  # the id alone (case numbers are random digits)
    for secret in ("Sofiia", f"kid{CHILD}"):
        assert secret not in staff_saw
    assert not tg.calls_of("forwardMessage")


async def test_police_cannot_see_a_case_without_police_consent(world, tg):
    app, admin, moderator, counsellor, police = world
    child = Child(app, tg, CHILD)
    await report(child, consent="consent.counsellor")
    card = card_of(tg)
    await counsellor.press(card, "operator.button.take")
    labels = [text for text, _ in FakeTelegram.inline_buttons(tg.message(OPERATOR, card.message_id))]
    assert app.engine.say("en", "operator.button.escalate") not in labels
    assert tg.topics(POLICE) == []


async def test_non_staff_are_refused_and_never_relayed(world, tg):
    app, admin, moderator, counsellor, police = world
    child = Child(app, tg, CHILD)
    await report(child)
    stranger = Staff(app, tg, 800099, "Eve")
    card = card_of(tg)
    await stranger.press(card, "operator.button.take")
    assert tg.calls_of("answerCallbackQuery")[-1].params.get("text") == app.engine.say("en", "operator.refused")
    before = len(child.inbox)
    await stranger.write("hello child", thread_id=tg.topics(OPERATOR)[-1].thread_id)
    await stranger.write("/grant admin")
    assert len(child.inbox) == before
    async with app.db.transaction() as tx:
        assert await tx.staff.get(800099) is None


async def test_only_the_holder_answers_and_no_answer_means_no_answer(world, tg):
    app, admin, moderator, counsellor, police = world
    child = Child(app, tg, CHILD)
    await report(child, reply="reply.no")
    topic = tg.topics(OPERATOR)[-1].thread_id
    before = len(child.inbox)
    await counsellor.write("Can you tell me more?", thread_id=topic)
    assert tg.messages_in(OPERATOR, topic)[-1].text == app.engine.say("en", "operator.notice.not_holder")
    await counsellor.press(card_of(tg), "operator.button.take")
    await counsellor.write("Can you tell me more?", thread_id=topic)
    assert tg.messages_in(OPERATOR, topic)[-1].text == app.engine.say("en", "operator.notice.no_reply")
    assert len(child.inbox) == before  # not even the "taken" notice: the child asked for no contact


async def test_a_deleted_topic_is_recreated_with_its_card(world, tg):
    app, admin, moderator, counsellor, police = world
    child = Child(app, tg, CHILD)
    await report(child)
    old = tg.topics(OPERATOR)[-1]
    tg.topics(OPERATOR)  # staff delete the topic by hand
    await tg_delete_topic(tg, old.thread_id)
    await child.send("I have more to say")
    new = tg.topics(OPERATOR)[-1]
    assert new.thread_id != old.thread_id
    texts = [m.text or "" for m in tg.messages_in(OPERATOR, new.thread_id)]
    assert any("They post mean comments" in t for t in texts) and any("I have more to say" in t for t in texts)


async def tg_delete_topic(tg: FakeTelegram, thread_id: int) -> None:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    try:
        await bot.delete_forum_topic(OPERATOR, thread_id)
    finally:
        await bot.session.close()


async def test_a_blocked_child_is_reported_in_the_topic(world, tg):
    app, admin, moderator, counsellor, police = world
    child = Child(app, tg, CHILD)
    await report(child)
    card = card_of(tg)
    await counsellor.press(card, "operator.button.take")
    tg.block_bot(CHILD)
    topic = tg.topics(OPERATOR)[-1].thread_id
    await counsellor.write("Are you there?", thread_id=topic)
    await settled(app, tg)
    last = tg.messages_in(OPERATOR, topic)[-1].text
    assert last.startswith(app.engine.say("en", "operator.notice.undeliverable", reason="")[:20])
