"""Issue 5, "no report or reply is ever lost": the real bot against a Telegram that answers 429, 5xx
and drops connections. Every card, relayed message and answer arrives exactly once, and urgent cards
jump the queue when the operator chat's allowance is used up (docs/ARCHITECTURE.md, rule 3)."""
from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import pytest
from aiolimiter import AsyncLimiter

import bot.limits
from storage import Kind, OutboxStatus, Target
from tests.resilience_support import (
    WAIT,
    Phone,
    ScriptedTelegram,
    card_header,
    cards_in,
    received,
    texts,
)
from tests.support import (
    ADMIN,
    OPERATOR,
    TOKEN,
    bot_settings,
    running_bot,
    settled,
    staff_world,
)


@pytest.fixture
async def tg():
    async with ScriptedTelegram(token=TOKEN) as fake:
        staff_world(fake)
        yield fake


async def child_outbox_messages(app: Any, user_id: int) -> Counter[int]:
    """The ids of the messages the bot recorded as sent to this child (what they said is wiped once sent):
    each message the child received must be one of them, once."""
    key = app.conversations.privacy.pseudonym("telegram", user_id)
    async with app.db.transaction() as tx:
        items = await tx.outbox.items()
    mine = [i for i in items if i.conversation_key == key and i.target == Target.CHILD
            and i.kind in (Kind.SAY, Kind.STAFF_TEXT)]
    assert all(i.status == OutboxStatus.SENT for i in mine), [(i.kind, i.status, i.error) for i in mine]
    return Counter(message_id for i in mine for message_id in (i.result or {}).get("message_ids", []))


async def cases_by_number(app: Any) -> dict[str, Any]:
    """Every case that queued a card, by number."""
    async with app.db.transaction() as tx:
        ids = {item.case_id for item in await tx.outbox.items() if item.kind == Kind.CASE_CARD}
        cases = [await tx.cases.get(case_id) for case_id in sorted(ids)]
    return {case.number: case for case in cases if case is not None}


def staff_press(tg: ScriptedTelegram, engine: Any, card: Any, key: str, user_id: int = ADMIN) -> None:
    tg.user_presses_button(user_id, tg.message(card.chat_id, card.message_id), text=engine.say("en", key))


# -- faults everywhere ------------------------------------------------------------------------------

OUTBOUND = ("sendMessage", "createForumTopic", "editMessageText", "editMessageReplyMarkup", "sendMediaGroup",
            "copyMessage", "answerCallbackQuery", "deleteMessages")


async def test_every_card_relay_and_answer_arrives_exactly_once_through_429_5xx_and_drops(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        engine = app.engine
        children = [Phone(tg, engine, 610 + n, first_name=f"Kid{n}") for n in range(3)]
        await asyncio.gather(*(child.tell(f"Story number {n}: they post mean comments under my photos.")
                               for n, child in enumerate(children)))
        calls_before = len(tg.calls)
        # From now on about one outgoing message in three fails once: 429 (retry after 1 s), 500, or a
        # dropped connection; so do the first topic, card and card edit, and a few of the long polls.
        tg.fail_once_each(0.3, seed=5, codes=(429, 500, "drop"), methods=OUTBOUND)
        tg.fail_next("getUpdates", 1, code=502)
        tg.drop_next("createForumTopic")
        tg.fail_next("editMessageText", 1, code=429, retry_after=1)

        async def agree_and_add(n: int, child: Phone) -> Any:
            confirmation = await child.agree()
            child.send(f"Something more from child {n}")
            await child.expect_key("relay.sent", case_number=re.search(r"\d{6}", confirmation.text)[0])
            return confirmation

        confirmations = await asyncio.gather(*(agree_and_add(n, child) for n, child in enumerate(children)))
        tg.drop_next("getUpdates")
        tg.fail_next("getUpdates", 1, code=429, retry_after=1)
        await tg.wait_for(lambda t: len(t.topics(OPERATOR)) >= 3, WAIT, "three topics")
        cases = await cases_by_number(app)
        assert len(cases) == 3
        number_of = {}
        for n, (child, confirmation) in enumerate(zip(children, confirmations)):
            number_of[n] = next(number for number in cases if number in confirmation.text)

        # An admin takes each case from its card and answers the child in its topic.
        async def take_and_answer(n: int, child: Phone) -> None:
            number = number_of[n]
            card = await tg.wait_for(lambda t: next(iter(cards_in(t, OPERATOR, engine, number)), None), WAIT,
                                     f"card of case {n}")
            staff_press(tg, engine, card, "operator.button.take")
            await child.expect_key("notice.taken", case_number=number)
            tg.user_sends_text(ADMIN, f"Answer for child {n}: you did the right thing", chat_id=OPERATOR,
                               thread_id=card.thread_id)
            await child.expect(f"Answer for child {n}: you did the right thing")

        await asyncio.gather(*(take_and_answer(n, child) for n, child in enumerate(children)))
        await settled(app, tg, timeout=60)

        injected = [c for c in tg.calls[calls_before:] if c.injected]
        tg.fail_once_each(0, 0)
        assert {c.injected for c in injected} == {"fail", "drop"}, injected
        assert any(c.error_code == 429 for c in injected) and any(c.error_code == 500 for c in injected)
        assert {c.method for c in injected} >= {"getUpdates", "sendMessage", "createForumTopic", "editMessageText"}

        # One topic per case, one card per topic, and no card anywhere else.
        topics = tg.topics(OPERATOR)
        assert len(topics) == 3
        assert len(tg.ok_calls("createForumTopic", chat_id=OPERATOR)) == 3
        for n, child in enumerate(children):
            case = (await cases_by_number(app))[number_of[n]]
            [topic] = [t for t in topics if t.thread_id == case.operator_topic_id]
            assert topic.name.startswith(case.number)
            [card] = cards_in(tg, OPERATOR, engine, case.number)
            assert card.thread_id == topic.thread_id and card.message_id == case.operator_card_message_id
            assert [m.thread_id for m in tg.sent_to(OPERATOR) if card_header(engine, case.number) in (m.text or "")] \
                == [topic.thread_id]
            # The child's follow-up was relayed once, into this topic only.
            relayed = [m for m in tg.sent_to(OPERATOR) if f"Something more from child {n}" in (m.text or "")]
            assert [m.thread_id for m in relayed] == [topic.thread_id]
            # The child saw every message the bot meant for them exactly once, and nothing else.
            shown = Counter(m.message_id for m in tg.sent_to(child.user_id))
            assert shown == await child_outbox_messages(app, child.user_id)
            counts = received(tg, child.user_id)
            assert counts[engine.say("en", "notice.taken", case_number=case.number)] == 1
            assert sum(1 for text in counts.elements() if f"Answer for child {n}:" in text) == 1
        # The admin's answers reached only their own child.
        for n, child in enumerate(children):
            others = [t for t in child.texts() if "Answer for child" in t and f"child {n}:" not in t]
            assert others == []
        async with app.db.transaction() as tx:
            assert await tx.outbox.items(status=OutboxStatus.FAILED) == []
            assert await tx.inbox.depth() == 0


async def test_a_card_whose_topic_was_created_is_not_given_a_second_topic_when_the_card_fails(tmp_path, tg):
    """createForumTopic succeeded, then the card itself failed: the retry uses the same topic."""
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Phone(tg, app.engine, 620)
        tg.refuse("card", "sendMessage", chat_id=OPERATOR)
        await child.report("They post mean comments under my photos.")
        await tg.wait_for(lambda t: t.refused_by("card") >= 1, WAIT, "a refused card")
        tg.allow("card")
        await settled(app, tg, timeout=WAIT)
        [case] = (await cases_by_number(app)).values()
        assert len(tg.topics(OPERATOR)) == 1 and len(tg.ok_calls("createForumTopic")) == 1
        assert len(cards_in(tg, OPERATOR, app.engine, case.number)) == 1


async def test_screenshots_still_reach_the_topic_when_the_album_meets_a_429(tmp_path, tg):
    """A 429 on the screenshots album, after the card went out, must not lose the screenshots."""
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Phone(tg, app.engine, 630)
        tg.fail_next("sendMediaGroup", 1, code=429, retry_after=1)
        await child.report("They post mean comments under my photos.", photos=2)
        await settled(app, tg, timeout=WAIT)
        [case] = (await cases_by_number(app)).values()
        assert len(cards_in(tg, OPERATOR, app.engine, case.number)) == 1
        photos = [m for m in tg.sent_to(OPERATOR, case.operator_topic_id) if m.kind == "photo"]
        assert len(photos) == 2, f"screenshots in the topic: {len(photos)} of 2"


async def test_a_long_report_reaches_the_topic_whole_when_its_second_part_meets_a_5xx(tmp_path, tg):
    """A card too long for one message goes on in a second one; a failure there must not cut the report."""
    story = "They write to me every night. " * 170 + "THE END OF MY STORY"
    assert len(story) > 5000
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Phone(tg, app.engine, 632)
        await child.tell(story)
        tg.refuse_when("rest", lambda method, p: method == "sendMessage" and str(p.get("chat_id")) == str(OPERATOR)
                       and (p.get("text") or "").startswith("…"))
        await child.agree()
        await tg.wait_for(lambda t: t.refused_by("rest") >= 1, WAIT, "the card's second part refused")
        tg.allow("rest")
        await settled(app, tg, timeout=WAIT)
        [case] = (await cases_by_number(app)).values()
        assert len(cards_in(tg, OPERATOR, app.engine, case.number)) == 1
        topic_text = "".join(texts(tg.sent_to(OPERATOR, case.operator_topic_id)))
        assert "THE END OF MY STORY" in topic_text, "the end of the report never reached the operator chat"


async def test_a_single_screenshot_reaches_the_topic(tmp_path, tg):
    """One screenshot is not an album (Telegram's sendMediaGroup takes 2-10 items): it must still arrive."""
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Phone(tg, app.engine, 631)
        await child.report("They post mean comments under my photos.", photos=1)
        await settled(app, tg, timeout=WAIT)
        [case] = (await cases_by_number(app)).values()
        photos = [m for m in tg.sent_to(OPERATOR, case.operator_topic_id) if m.kind == "photo"]
        assert len(photos) == 1, f"screenshots in the topic: {len(photos)} of 1"


# -- urgent first --------------------------------------------------------------------------------------

SPEED = 100  # the limiter's minute lasts 0.6 s here: the group allowance's order, without the waiting


class StaffGate:
    """The worker's limits, with the staff chats shut until `open()` (so a queue of cards builds up),
    recording the order in which items were let through."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.is_open, self.admitted = inner, False, []

    def open(self) -> None:
        self.is_open = True

    def has_capacity(self, item: Any) -> bool:
        if item.target != Target.CHILD and not self.is_open:
            return False
        return self.inner.has_capacity(item)

    async def acquire(self, item: Any) -> None:
        self.admitted.append(item)
        await self.inner.acquire(item)

    async def acquire_extra(self, item: Any) -> None:
        await self.inner.acquire_extra(item)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_urgent_cards_jump_the_queue_when_the_group_allowance_is_used_up(tmp_path, tg, monkeypatch):
    monkeypatch.setattr(bot.limits, "AsyncLimiter", lambda rate, period: AsyncLimiter(rate, period / SPEED))
    async with running_bot(bot_settings(tmp_path, tg, rate_group_per_minute=3)) as app:
        gate = StaffGate(app.worker.limits)
        app.worker.limits = app.worker.rounds.limits = gate
        engine = app.engine
        ordinary = [Phone(tg, engine, 640 + n) for n in range(4)]
        helped = Phone(tg, engine, 660)  # "I need help now", then tells what happened
        in_danger = Phone(tg, engine, 661)  # types words of danger while reporting

        # Four ordinary reports wait for the operator chat, then two urgent ones arrive.
        await asyncio.gather(*(c.report(f"Ordinary report {n}") for n, c in enumerate(ordinary)))
        await asyncio.gather(helped.report("Someone keeps sending me scary messages", via_help=True),
                             in_danger.report("He says I should kill myself", urgent_words=True))
        async with app.db.transaction() as tx:
            waiting = await tx.outbox.pending_cards()
        assert len(waiting) == 6 and tg.topics(OPERATOR) == []
        gate.open()
        app.outbox.nudge()
        await tg.wait_for(lambda t: len(t.topics(OPERATOR)) == 6 and len(t.ok_calls("sendMessage", chat_id=OPERATOR)) >= 6,
                          WAIT, "six cards")
        await settled(app, tg, timeout=WAIT)

        cases = await cases_by_number(app)
        urgent = {c.id for c in cases.values() if c.urgent}
        assert len(urgent) == 2
        for child in (helped, in_danger):
            key = app.conversations.privacy.pseudonym("telegram", child.user_id)
            assert any(c.urgent and c.conversation_key == key for c in cases.values())
        # The worker let the two urgent cards through first, before any waiting ordinary card.
        first_cards = [item.case_id for item in gate.admitted if item.kind == Kind.CASE_CARD]
        assert set(first_cards[:2]) == urgent, first_cards

        # And in the operator chat both urgent cards were posted before the ordinary cards that had to
        # wait for the allowance to come back (all but the one that started with them).
        def position(number: str, method: str) -> int:
            header = card_header(engine, number)
            for index, call in enumerate(tg.calls):
                if not call.ok:
                    continue
                if method == "createForumTopic" and call.method == method and number in call.params["name"]:
                    return index
                if method == "sendMessage" and call.method == method and header in (call.params.get("text") or ""):
                    return index
            raise AssertionError(f"no {method} for case {number}")

        urgent_cards = [position(c.number, "sendMessage") for c in cases.values() if c.urgent]
        ordinary_topics = sorted(position(c.number, "createForumTopic") for c in cases.values() if not c.urgent)
        assert max(urgent_cards) < ordinary_topics[1], (urgent_cards, ordinary_topics)
        for case in cases.values():
            topic = next(t for t in tg.topics(OPERATOR) if t.thread_id == case.operator_topic_id)
            assert topic.name.startswith("🔴") == case.urgent
            assert len(cards_in(tg, OPERATOR, engine, case.number)) == 1
