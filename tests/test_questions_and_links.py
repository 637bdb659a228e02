"""A child asks a counsellor a question without a report, or reports a harmful link in a few taps."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.fakes.telegram_api import FakeTelegram
from tests.support import (
    ADMIN, OPERATOR, POLICE, Child, Staff, bot_settings, card_of, clock_at, grant, running_bot,
)

DAYTIME_IN_KYIV = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 12:00 in Kyiv, inside office hours
NIGHT_IN_KYIV = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # 01:00 in Kyiv


@pytest.fixture
async def world(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg), clock=clock_at(DAYTIME_IN_KYIV)) as app:
        admin, counsellor = Staff(app, tg, ADMIN, "Ada"), Staff(app, tg, 800003, "Olena")
        await grant(admin, counsellor, "counsellor")
        yield app, counsellor


async def ask(child: Child, question: str) -> None:
    await child.send("/start")
    await child.press("menu.ask")
    await child.send(question)
    await child.press("ask.send")


async def test_a_question_reaches_a_consultation_topic_and_the_answer_comes_back(world, tg):
    app, counsellor = world
    child = Child(app, tg, 901)
    await child.send("/start")
    await child.press("menu.ask")
    assert app.engine.say("en", "ask.online") in child.texts()
    await child.send("How do I make my Instagram private?")
    await child.press("ask.send")
    topic = tg.topics(OPERATOR)[-1]
    assert app.engine.say("en", "operator.kind.consultation") in topic.name
    card = card_of(tg)
    assert "How do I make my Instagram private?" in card.text
    labels = [text for text, _ in FakeTelegram.inline_buttons(card)]
    assert app.engine.say("en", "operator.button.escalate") not in labels
    await counsellor.press(card, "operator.button.take")
    await counsellor.write("Settings → Privacy → Private account. You did well to ask!", thread_id=topic.thread_id)
    assert child.texts()[-1].startswith("💬") and "Olena" not in child.texts()[-1]
    assert tg.topics(POLICE) == []


async def test_turning_a_question_into_a_report_asks_the_child_first(world, tg):
    app, counsellor = world
    child = Child(app, tg, 902)
    await ask(child, "Someone older keeps asking me for photos, is that normal?")
    card = card_of(tg)
    await counsellor.press(card, "operator.button.take")
    await counsellor.press(tg.message(OPERATOR, card.message_id), "operator.button.convert")
    assert child.texts()[-1] == app.engine.say("en", "notice.convert_ask", case_number=tg.topics(OPERATOR)[-1].name.split(" · ")[0])
    async with app.db.transaction() as tx:
        assert (await tx.cases.get(1)).kind == "consultation"  # nothing changed before the child agrees
    await child.press("convert.yes")
    async with app.db.transaction() as tx:
        assert (await tx.cases.get(1)).kind == "report"
    topic = tg.topics(OPERATOR)[-1].thread_id
    assert app.engine.say("en", "operator.notice.converted") in [m.text for m in tg.messages_in(OPERATOR, topic)]


async def test_outside_office_hours_the_child_is_told_honestly(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg), clock=clock_at(NIGHT_IN_KYIV)) as app:
        child = Child(app, tg, 903)
        await child.send("/start")
        await child.press("menu.ask")
        assert "09:00–21:00" in child.texts()[-1]
        labels = [text for text, _ in FakeTelegram.inline_buttons(child.last)]
        assert app.engine.say("en", "menu.help_now") in labels
        await child.press("ask.write_anyway")
        await child.send("Can I talk to someone tomorrow?")
        await child.press("ask.send")
        assert len(tg.topics(OPERATOR)) == 1


async def report_link(child: Child, link: str, kind: str = "link_kind.scam", consent: str = "link_consent.counsellor"):
    await child.send("/start")
    await child.press("menu.link")
    await child.press(kind)
    if kind == "link_kind.csam":
        await child.press("common.continue")
    await child.send(link)


async def test_a_bad_link_is_refused_kindly_and_a_good_one_arrives_inert(world, tg):
    app, counsellor = world
    child = Child(app, tg, 904)
    await report_link(child, "just some words")
    assert child.texts()[-1] == app.engine.say("en", "link.invalid")
    await child.send("https://free-skins.example.com/login?ref=kids")
    await child.press("platform.telegram")
    await child.press("common.skip")
    await child.press("summary.correct")
    await child.press("link_consent.counsellor")
    await child.press("reply.no")
    sent = child.texts()[-1].lower()
    assert "cyberpolice" in sent and "takeitdown" not in sent and "stopcrime" not in sent  # only csam needs those
    card = card_of(tg)
    assert "free-skins" in card.text and "https://" not in card.text and "example.com" not in card.text
    assert app.engine.say("en", "operator.reply.no") in card.text  # as the child answered
    assert card.params["link_preview_options"]["is_disabled"] is True
    assert not [e for e in card.data.get("entities", []) if e["type"] in ("url", "text_link", "mention")]
    assert tg.topics(POLICE) == []


async def test_a_link_report_reaches_police_when_the_child_allows_it(world, tg):
    app, counsellor = world
    child = Child(app, tg, 905)
    await report_link(child, "@recruiter_for_kids", kind="link_kind.csam")
    assert app.engine.say("en", "link.csam_warning") in child.texts()
    await child.press("common.skip")
    await child.press("common.skip")
    await child.press("summary.correct")
    await child.press("link_consent.police")
    await child.press("reply.yes")
    assert "takeitdown" in child.texts()[-1].lower() and len(tg.topics(POLICE)) == 1
    police_card = card_of(tg, POLICE)
    assert "recruiter_for_kids" in police_card.text and "@recruiter" not in police_card.text
