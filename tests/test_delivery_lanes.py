"""No poison in a lane: one item Telegram refuses never holds a case's later or urgent items back,
its loss is told in the case's topic (and to the child), and a card's edit never holds the child's
words back. Played through the whole bot against the fake Bot API."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.fakes.telegram_api import FakeTelegram
from tests.support import ADMIN, OPERATOR, Child, Staff, bot_settings, card_of, grant, report, running_bot

CHILD = 611
FAST = 30.0  # the database's clock runs this much faster: retries fall due in a blink, no test sleeps
WRONG_TYPE = "Bad Request: wrong file type"
FOREVER = 1000


def fast_clock() -> Any:
    started, at = time.monotonic(), datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    return lambda: at + timedelta(seconds=(time.monotonic() - started) * FAST)


@pytest.fixture
async def case(tmp_path, tg):
    """A child's report, taken by a counsellor: (app, child, topic)."""
    async with running_bot(bot_settings(tmp_path, tg), clock=fast_clock()) as app:
        admin = Staff(app, tg, ADMIN, "Ada")
        counsellor = Staff(app, tg, 800003, "Olena")
        await grant(admin, counsellor, "counsellor")
        child = Child(app, tg, CHILD)
        await report(child)
        await counsellor.press(card_of(tg), "operator.button.take")
        yield app, child, tg.topics(OPERATOR)[-1].thread_id


def topic_texts(tg: FakeTelegram, topic: int) -> list[str]:
    return [m.text or m.caption or "" for m in tg.messages_in(OPERATOR, topic)]


def arrived(tg: FakeTelegram, topic: int, *wanted: str) -> bool:
    texts = topic_texts(tg, topic)
    return all(any(part in text for text in texts) for part in wanted)


async def test_a_photo_telegram_refuses_in_every_form_is_told_and_holds_nothing_back(case, tg):
    app, child, topic = case
    tg.fail_next("sendPhoto", FOREVER, code=400, description=WRONG_TYPE)
    tg.fail_next("sendDocument", FOREVER, code=400, description=WRONG_TYPE)
    tg.user_sends_photo(CHILD)
    tg.user_sends_text(CHILD, "URGENT he is outside my house")
    tg.user_sends_text(CHILD, "Are you still there?")
    lost = app.engine.say("en", "operator.notice.lost_photo")
    await tg.wait_for(lambda t: arrived(t, topic, "outside my house", "Are you still there?", lost),
                      what="the urgent message, the later one and the loss line in the topic")
    # The child's side of it: asked, kindly, to send it again; admins are not told the chat is unreachable.
    send_again = app.engine.say("en", "notice.send_again")
    await tg.wait_for(lambda t: send_again in [m.text for m in t.sent_to(CHILD)], what="the child told")
    unreachable = app.engine.say("en", "operator.chat_unreachable", role="operator", reason="")[:20]
    assert not any(unreachable in (m.text or "") for m in tg.sent_to(ADMIN))
    assert len(tg.calls_of("sendPhoto")) == 3  # three tries, each then once more as a document
    assert len(tg.calls_of("sendDocument")) == 3


async def test_a_photo_telegram_refuses_is_shown_as_a_document(case, tg):
    app, child, topic = case
    tg.fail_next("sendPhoto", FOREVER, code=400, description=WRONG_TYPE)
    tg.user_sends_photo(CHILD)
    tg.user_sends_text(CHILD, "Did you see it?")
    await tg.wait_for(lambda t: arrived(t, topic, "Did you see it?"), what="the message after the photo")
    documents = [m for m in tg.messages_in(OPERATOR, topic) if "document" in m.data]
    assert len(documents) == 1 and documents[0].data["document"]["file_name"].startswith(("photo", "file"))  # neutral
    lost = app.engine.say("en", "operator.notice.lost_photo")
    assert lost not in topic_texts(tg, topic)


async def test_urgent_words_never_wait_behind_the_cases_ordinary_items(case, tg):
    """A photo that cannot be sent while Telegram has trouble with files (5xx: kept and retried, not
    given up) holds back the case's ordinary items - but not the child's words of danger."""
    app, child, topic = case
    tg.fail_next("sendPhoto", FOREVER, code=500)
    tg.user_sends_photo(CHILD)
    tg.user_sends_text(CHILD, "URGENT he is outside my house")
    urgent = app.engine.say("en", "operator.notice.urgent_child")
    await tg.wait_for(lambda t: arrived(t, topic, "outside my house", urgent), what="the urgent message and notice")


@pytest.mark.parametrize("code", [500, 429])
async def test_a_cards_edit_that_is_retried_never_holds_the_childs_answer_back(case, tg, code):
    """Issue 18 item 8: the card's edit shared the case's lane, so a slow or retried edit (a moderator
    accepting, a counsellor taking) kept the child's answer from the topic for as long as it failed."""
    app, child, topic = case
    tg.fail_next("editMessageText", FOREVER, code=code, retry_after=3600)
    number = tg.topics(OPERATOR)[-1].name.split(" · ")[0]
    async with app.db.transaction() as tx:  # the case changes: its card is edited (and that fails)
        await app.outbox.case_changed(tx, await tx.cases.by_number(number))
    await tg.wait_for(lambda t: t.calls_of("editMessageText"), what="the edit tried")
    tg.user_sends_text(CHILD, "I am here, thank you")
    await tg.wait_for(lambda t: arrived(t, topic, "I am here, thank you"), what="the child's answer in the topic")


async def test_a_file_for_the_child_telegram_refuses_is_told_to_both_sides(case, tg):
    app, child, topic = case
    tg.fail_next("copyMessage", FOREVER, code=400, description="Bad Request: message can't be copied")
    tg.user_sends_photo(800003, chat_id=OPERATOR, thread_id=topic)  # the counsellor's photo for the child
    tg.user_sends_text(800003, "Here is what I mean.", chat_id=OPERATOR, thread_id=topic)
    told = app.engine.say("en", "notice.not_shown_to_you")
    await tg.wait_for(lambda t: told in [m.text for m in t.sent_to(CHILD)], what="the child told kindly")
    await tg.wait_for(lambda t: any((m.text or "").endswith("Here is what I mean.") for m in t.sent_to(CHILD)),
                      what="the counsellor's next words reach the child")
    undeliverable = app.engine.say("en", "operator.notice.undeliverable", reason="")
    await tg.wait_for(lambda t: any((m.text or "").startswith(undeliverable) for m in t.messages_in(OPERATOR, topic)),
                      what="the topic told")


async def test_an_album_telegram_refuses_is_shown_as_documents(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, CHILD + 1)

        async def screenshots() -> None:
            tg.user_sends_photo(CHILD + 1)
            tg.user_sends_photo(CHILD + 1)

        tg.fail_next("sendMediaGroup", 1, code=400, description=WRONG_TYPE)
        await report(child, before_summary=screenshots)
        topic = tg.topics(OPERATOR)[-1].thread_id
        await tg.wait_for(lambda t: len([m for m in t.messages_in(OPERATOR, topic) if "document" in m.data]) == 2,
                          what="both screenshots, as documents")
        albums = tg.calls_of("sendMediaGroup")
        assert len(albums) == 2 and {item["type"] for item in albums[-1].params["media"]} == {"document"}
