"""Whole conversations through the fake Bot API: every promise the bot makes to a child holds."""
from __future__ import annotations

import re

import pytest

from tests.fakes.telegram_api import FakeTelegram
from tests.support import (
    ADMIN, OPERATOR, Child, Staff, bot_settings, card_of, grant, report, running_bot, settled,
)

DANGER = {"en": "I want to kill myself", "uk": "я хочу вбити себе"}


@pytest.fixture
async def app(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as running:
        yield running


def topic_texts(tg: FakeTelegram, number: str) -> list[str]:
    topic = next(t for t in tg.topics(OPERATOR) if t.name.split(" · ")[0].removeprefix("🔴 ") == number)
    return [m.text or "" for m in tg.messages_in(OPERATOR, topic.thread_id)]


@pytest.mark.parametrize(("category", "lang"), [("category.bullying", "en"), ("category.sextortion", "uk")])
async def test_tips_for_my_situation_are_the_tips_for_the_report_just_sent(app, tg, category, lang):
    child = Child(app, tg, 1201, lang=lang)
    await report(child, category=category)
    await child.press("report.tips_for_me")
    topic = category.split(".")[1]
    assert child.texts()[-1] == app.engine.say(lang, f"tips.{topic}.card1")


@pytest.mark.parametrize("way_back", ["/start", "menu", "language"])
async def test_a_stopped_report_can_be_continued(app, tg, way_back):
    child = Child(app, tg, 1202)
    await child.send("/start")
    await child.press("menu.report")
    await child.press("category.scam")
    await child.send("Someone stole my game account")
    await child.press("platform.discord")
    if way_back == "language":
        await child.send("/language")
        tg.user_presses_button(child.user_id, child.last, text=app.engine.say("uk", "language.name"))
        child.lang = "uk"
        await settled(app, tg)
        assert child.texts()[-1] == app.engine.say("uk", "report.when")  # the report carries on, in Ukrainian
        await child.send("/start")
        assert child.texts()[-1] == child.label("resume.text")
    else:
        await child.press("common.stop")
        if way_back == "menu":
            await child.press("common.to_menu")
            await child.press("menu.report")
        else:
            await child.send("/start")
    assert child.texts()[-1] == child.label("resume.text")
    await child.press("resume.continue")
    assert child.texts()[-1] == child.label("report.when")
    await child.press("when.today")
    assert child.texts()[-1] == child.label("report.ongoing")


async def test_words_typed_while_a_second_report_is_written_never_reach_the_first_counsellor(app, tg):
    child = Child(app, tg, 1203)
    await report(child)
    [first] = [t.name.split(" · ")[0] for t in tg.topics(OPERATOR)]
    before = topic_texts(tg, first)
    await child.send("/report")
    await child.send("I want to tell about something else")  # "add to it, or something new?"
    await child.press("report.new_case")
    await child.press("category.sextortion")
    await child.send("Someone keeps asking me for photos")  # (no words of danger: they would rightly raise all cases)
    await child.send("please help")  # on the reassurance and the next question: part of this report
    assert topic_texts(tg, first) == before
    assert child.label("relay.sent").split("(")[0] not in " ".join(child.texts()[-6:])


async def test_help_alone_raises_no_alarm_and_no_makes_the_case_urgent(app, tg):
    child = Child(app, tg, 1204)
    await report(child)
    [number] = [t.name.split(" · ")[0] for t in tg.topics(OPERATOR)]
    await child.send("/help")
    await child.press("help.safe_yes")
    async with app.db.transaction() as tx:
        assert not (await tx.cases.by_number(number)).urgent
    assert app.engine.say("en", "operator.notice.urgent_child") not in topic_texts(tg, number)
    await child.send("/help")
    await child.press("help.safe_no")
    async with app.db.transaction() as tx:
        assert (await tx.cases.by_number(number)).urgent
    assert app.engine.say("en", "operator.notice.urgent_not_safe") in topic_texts(tg, number)
    assert "102" in child.texts()[-1]


@pytest.mark.parametrize("lang", ["en", "uk"])
async def test_misunderstood_never_keeps_the_danger_words_as_an_answer(app, tg, lang):
    child = Child(app, tg, 1205, lang=lang)
    await child.send("/start")
    await child.press("menu.report")
    await child.press("category.bullying")
    await child.send("They laugh at me in the class chat")
    await child.send(DANGER[lang])  # asked "where did it happen?"
    await child.press("crisis.misunderstood")
    assert child.texts()[-2:] == [child.label("crisis.sorry"), child.label("report.where")]
    await child.press("platform.telegram")
    for key in ("when.week", "answer.yes", "who.known", "who.peer", "age.middle", "screenshots.done"):
        await child.press(key)
    assert DANGER[lang] not in child.texts()[-1] and child.label("platform.telegram") in child.texts()[-1]


async def test_several_open_reports_are_listed_and_the_child_picks_where_words_go(app, tg):
    admin, counsellor = Staff(app, tg, ADMIN, "Ada"), Staff(app, tg, 800003, "Olena")
    await grant(admin, counsellor, "counsellor")
    child = Child(app, tg, 1206)
    await report(child)
    first = tg.topics(OPERATOR)[-1].name.split(" · ")[0]
    await counsellor.press(card_of(tg), "operator.button.take")
    await counsellor.write("I'm here. Tell me more when you can.", thread_id=tg.topics(OPERATOR)[-1].thread_id)
    await child.send("/report")
    await child.press("report.new_case")
    await child.press("category.scam")
    await child.send("Someone stole my account")
    for key in ("platform.discord", "when.today", "answer.no", "who.stranger", "who.adult", "age.older",
                "screenshots.done", "summary.correct", "consent.counsellor", "reply.yes"):
        await child.press(key)
    second = tg.topics(OPERATOR)[-1].name.split(" · ")[0]
    await child.send("/mycase")
    listing = child.texts()[-1]
    assert first in listing and second in listing and child.label("status.assigned") in listing
    assert child.label("mycase.news.message").split("{")[0] in listing
    tg.user_presses_button(child.user_id, child.last, text=child.app.engine.say("en", "mycase.pick", case_number=first))
    await settled(app, tg)
    await child.send("About my first report: it happened again")
    assert any("it happened again" in text for text in topic_texts(tg, first))
    assert not any("it happened again" in text for text in topic_texts(tg, second))


async def test_a_receipt_code_typed_in_the_same_chat_tells_staff_nothing_false(app, tg):
    child = Child(app, tg, 1207)
    confirmation = await report(child)
    number = tg.topics(OPERATOR)[-1].name.split(" · ")[0]
    code = re.search(r"(\d{3}(?: \d{3}){5})", confirmation.text).group(1)
    await child.send("/mycase")
    await child.press("mycase.enter_code")
    await child.send(code)
    assert child.label("receipt.already_here").replace("{case_number}", number) in child.texts()
    assert not any("another" in text or "device" in text for text in topic_texts(tg, number))
    other_phone = Child(app, tg, 1208)
    await other_phone.send("/mycase")
    await other_phone.press("mycase.enter_code")
    await other_phone.send(code)
    notice = app.engine.say("en", "operator.notice.reconnected", channel="telegram")
    assert notice in topic_texts(tg, number) and "device" not in notice


async def test_an_unknown_command_after_quick_exit_shows_the_menu(app, tg):
    child = Child(app, tg, 1209)
    await child.send("/start")
    await child.send("/exit")
    reply = await child.send("/whatever")
    labels = [text for text, _ in FakeTelegram.inline_buttons(reply)]
    assert reply.text == child.label("common.unknown_command") and child.label("menu.report") in labels


async def test_an_internationalised_link_is_taken_and_the_child_is_asked_about_an_answer(app, tg):
    child = Child(app, tg, 1210, lang="uk")
    await child.send("/link")
    await child.press("link_kind.hate")
    await child.send("приклад.укр/сторінка")
    assert child.texts()[-1] == child.label("link.where")
    await child.press("common.skip")
    await child.press("common.skip")
    await child.press("summary.correct")
    await child.press("link_consent.counsellor")
    assert child.texts()[-1] == child.label("report.reply")
    sent = await child.press("reply.no")
    assert "takeitdown" not in sent.text and "stopcrime" not in sent.text
    async with app.db.transaction() as tx:
        case = await tx.cases.by_number(tg.topics(OPERATOR)[-1].name.split(" · ")[0])
    assert case.reply_wanted is False and case.answers["link"] == "приклад.укр/сторінка"


async def test_the_staff_card_carries_no_sentence_written_for_the_child(app, tg):
    child = Child(app, tg, 1211)
    await report(child, category="category.sextortion", what="He wants money or he posts my photos.")
    card = card_of(tg).text
    texts = app.engine.content.texts["en"]
    staff_words = {value for key, value in texts.items() if key.startswith("operator.")}
    child_words = {value for key, value in texts.items()
                   if not key.startswith("operator.") and len(value.split()) > 1 and value not in staff_words}
    assert not [words for words in child_words if words in card]
    for key in ("operator.value.category.sextortion", "operator.value.who.known", "operator.field.age_group"):
        assert app.engine.say("en", key) in card


async def test_a_picture_sent_after_an_abuse_material_link_report_is_never_passed_on(app, tg):
    child = Child(app, tg, 1212)
    await child.send("/link")
    await child.press("link_kind.csam")
    await child.press("common.continue")
    await child.send("t.me/some_channel")
    for key in ("common.skip", "common.skip", "summary.correct", "link_consent.counsellor", "reply.yes"):
        await child.press(key)
    number = tg.topics(OPERATOR)[-1].name.split(" · ")[0]
    before = topic_texts(tg, number)
    await child.send("/menu")
    await child.send_photo()
    assert child.texts()[-1] == child.label("images.not_here") and tg.calls_of("deleteMessages")
    assert topic_texts(tg, number) == before


async def test_words_of_danger_in_the_childs_own_story_are_kept_and_the_report_goes_on(app, tg):
    child = Child(app, tg, 1213)
    story = "He says he will kill me if I tell anyone about the photos."
    await report(child, what=story)  # the danger screen first, then "I'm safe, let's continue"
    assert child.label("crisis.text").split("\n")[0] in " ".join(child.texts())
    card = card_of(tg).text
    assert story in card and card.startswith(app.engine.say("en", "operator.label.urgent"))


async def test_words_of_danger_where_they_answer_no_question_reach_staff_beside_the_answers(app, tg):
    child = Child(app, tg, 1214)
    await child.send("/start")
    await child.press("menu.report")
    await child.press("category.bullying")
    await child.send("They post mean comments under my photos every day.")
    await child.send(DANGER["en"])  # on "Where did it happen?"
    await child.press("crisis.continue")
    assert child.last.text == child.label("report.where")  # asked again: the words were no answer to it
    for key in ("platform.instagram", "when.week", "answer.yes", "who.known", "who.peer", "age.middle",
                "screenshots.done", "summary.correct", "consent.counsellor", "reply.yes"):
        await child.press(key)
    card = card_of(tg).text
    assert f"{app.engine.say('en', 'operator.label.danger_words')}: {DANGER['en']}" in card
    assert f": {DANGER['en']}" not in card.split(app.engine.say("en", "operator.label.danger_words"))[0]
