"""/transfer moves a case to another region's chat (card, summary, the old topic told and closed, the
child undisturbed, the audit log); /queue lists a chat's open cases; every bad request changes nothing."""
from __future__ import annotations

import pytest

from bot.cards import CardPress
from bot.permissions import CaseAction
from bot.settings import Settings
from storage import Target
from tests.fakes.telegram_api import FakeTelegram
from tests.support import ADMIN, OPERATOR, POLICE, Child, Staff, bot_settings, card_of, grant, running_bot, settled
from tests.test_regions_routing import CHATS, KYIV, LVIV, report_from


@pytest.fixture
async def world(tmp_path, tg):
    for chat, title in ((KYIV, "Kyiv operators"), (LVIV, "Lviv operators")):
        tg.add_group(chat, title, is_forum=True)
    async with running_bot(bot_settings(tmp_path, tg, operator_chats=CHATS)) as app:
        admin = Staff(app, tg, ADMIN, "Ada", chat=KYIV)
        oksana = Staff(app, tg, 800021, "Oksana", chat=KYIV)
        ivan = Staff(app, tg, 800022, "Ivan", chat=KYIV)
        await grant(admin, oksana, "counsellor")
        await grant(admin, ivan, "counsellor")
        child = Child(app, tg, 661)
        await report_from(child, "Kyiv", "Kyiv: they post mean comments")
        await oksana.press(card_of(tg, KYIV), "operator.button.take")
        topic = tg.topics(KYIV)[-1].thread_id
        await oksana.write("Hello, I'm here. Are you safe?", thread_id=topic)
        await child.send("Yes, at home")
        yield app, admin, oksana, ivan, child, topic


def bot_lines(tg: FakeTelegram, chat: int, thread: int | None = None) -> list[str]:
    return [m.text or "" for m in tg.messages_in(chat, thread) if m.from_bot]


async def case_now(app):
    async with app.db.transaction() as tx:
        case = (await tx.cases.in_progress())[0]
        return case, await tx.audit.for_case(case.id)


async def test_a_transfer_opens_the_case_in_the_other_regions_chat_and_closes_the_old_topic(world, tg):
    app, admin, oksana, ivan, child, topic = world
    said_to_child = len(child.inbox)
    await oksana.write("/transfer lviv", thread_id=topic)
    new_topic = tg.topics(LVIV)[-1]
    lines = bot_lines(tg, LVIV, new_topic.thread_id)
    assert "Kyiv: they post mean comments" in lines[0] and "Region: Lviv" in lines[0]  # the card
    arrived = next(line for line in lines if line.startswith("⬅️"))
    assert "Kyiv" in arrived and "Oksana" in arrived and "take" in arrived
    assert app.engine.say("en", "operator.transfer.child_messages", count=1) in arrived
    assert "Yes, at home" not in arrived and "Are you safe" not in arrived  # no words kept (rule 4)
    old = [t for t in tg.topics(KYIV) if t.thread_id == topic][0]
    assert old.closed and any(line.startswith("➡️") and "Lviv" in line for line in bot_lines(tg, KYIV, topic))
    assert len(child.inbox) == said_to_child  # the child is not disturbed
    case, audit = await case_now(app)
    assert case.region == "lviv" and case.topic(Target.OPERATOR).topic_id == new_topic.thread_id
    assert [(e.actor_alias, e.detail) for e in audit if e.action == "transfer"] == [("Oksana", "kyiv → lviv")]
    await child.send("Are you still there?")
    assert any("Are you still there?" in (m.text or "") for m in tg.messages_in(LVIV, new_topic.thread_id))
    assert not any("Are you still there?" in (m.text or "") for m in tg.messages_in(KYIV))


@pytest.mark.parametrize("who, command, says", [
    ("oksana", "/transfer odesa", "There is no region 'odesa'"),
    ("oksana", "/transfer kyiv", "already in Kyiv's chat"),
    ("oksana", "/transfer vinnytsia", "Vinnytsia has no operator chat of its own"),
    ("oksana", "/transfer", "Write /transfer and a region's key"),
    ("ivan", "/transfer lviv", "Only the case's holder, a moderator or an admin"),
])
async def test_a_transfer_that_cannot_be_gets_a_clear_answer_and_changes_nothing(world, tg, who, command, says):
    app, admin, oksana, ivan, child, topic = world
    before, _ = await case_now(app)
    await {"oksana": oksana, "ivan": ivan}[who].write(command, thread_id=topic)
    assert says in bot_lines(tg, KYIV, topic)[-1]
    after, audit = await case_now(app)
    assert after == before and not tg.topics(LVIV) and "transfer" not in [e.action for e in audit]


async def test_the_queue_lists_a_chats_cases_urgent_first_with_aliases_only(world, tg):
    app, admin, oksana, ivan, child, topic = world
    await report_from(Child(app, tg, 662), "Kyiv", "Second: they post mean comments")
    await report_from(Child(app, tg, 663), "region.unsaid", "Elsewhere: they post mean comments")
    admin_default = Staff(app, tg, ADMIN, "Ada", chat=OPERATOR)
    moderator = Staff(app, tg, 800023, "Mira", chat=KYIV)
    await grant(admin, moderator, "moderator")
    await moderator.write("/queue")
    queue = bot_lines(tg, KYIV)[-1]
    kyiv_numbers = [t.name.split(" · ")[0] for t in tg.topics(KYIV)]
    assert "Waiting for moderation (1):" in queue and "Being worked on (1):" in queue
    assert all(number in queue for number in kyiv_numbers) and "Oksana" in queue and "SLA 60 min" in queue
    assert tg.topics(OPERATOR)[-1].name.split(" · ")[0] not in queue  # another chat's case
    assert "Marta" not in queue and "661" not in queue  # aliases only, nothing of the children
    await admin_default.write("/queue")
    assert tg.topics(OPERATOR)[-1].name.split(" · ")[0] in bot_lines(tg, OPERATOR)[-1]


async def test_the_queue_is_refused_to_others_and_asked_for_in_general_only(world, tg):
    app, admin, oksana, ivan, child, topic = world
    await oksana.write("/queue")
    assert bot_lines(tg, KYIV)[-1] == app.engine.say("en", "operator.queue.refused")
    await admin.write("/queue", thread_id=topic)
    assert bot_lines(tg, KYIV, topic)[-1] == app.engine.say("en", "operator.queue.general_only")


KYIV_POLICE = -1001000000021


def with_kyiv_police(tmp_path, tg: FakeTelegram) -> Settings:
    """Kyiv and Lviv with operator chats of their own, Kyiv with its own police chat too."""
    for chat, title in ((KYIV, "Kyiv operators"), (LVIV, "Lviv operators"), (KYIV_POLICE, "Kyiv police")):
        tg.add_group(chat, title, is_forum=True)
    return bot_settings(tmp_path, tg, operator_chats=CHATS, police_chats=f"kyiv={KYIV_POLICE}")


async def test_an_escalated_case_moves_to_the_new_regions_police_chat_too(tmp_path, tg):
    async with running_bot(with_kyiv_police(tmp_path, tg)) as app:
        child = Child(app, tg, 671)
        await report_from(child, "Kyiv", "Kyiv: a stranger posts mean comments", consent="consent.police")
        admin, oksana = Staff(app, tg, ADMIN, "Ada", chat=KYIV), Staff(app, tg, 800051, "Oksana", chat=KYIV)
        await grant(admin, oksana, "counsellor")
        await oksana.press(card_of(tg, KYIV), "operator.button.take")
        await oksana.press(card_of(tg, KYIV), "operator.button.escalate")
        old_police = tg.topics(KYIV_POLICE)[0]
        await oksana.write("/transfer lviv", thread_id=tg.topics(KYIV)[0].thread_id)
        assert "Kyiv: a stranger posts" in card_of(tg, LVIV).text
        assert "Kyiv: a stranger posts" in card_of(tg, POLICE).text  # Lviv has no police chat: the default one
        assert [t for t in tg.topics(KYIV_POLICE) if t.thread_id == old_police.thread_id][0].closed


async def test_a_card_button_works_only_in_the_cases_own_chat(world, tg):
    app, admin, oksana, ivan, child, topic = world
    await report_from(Child(app, tg, 664), "region.unsaid", "Elsewhere: they post mean comments")
    async with app.db.transaction() as tx:
        elsewhere = [case for case in await tx.cases.in_progress() if case.region is None][0]
    forged = {"message_id": 1, "date": 1, "chat": tg._chat_dict(tg.chats[KYIV])}  # a press from Kyiv's chat
    tg._push_update("callback_query", {"id": "1", "from": tg._user_dict(ADMIN), "chat_instance": "1",
                                       "message": forged, "data": CardPress(CaseAction.SPAM, elsewhere.id).pack()})
    await settled(app, tg)
    async with app.db.transaction() as tx:
        assert (await tx.cases.get(elsewhere.id)).status == elsewhere.status
        assert "spam" not in [entry.action for entry in await tx.audit.for_case(elsewhere.id)]


async def test_the_police_chats_queue_lists_only_the_cases_it_has(tmp_path, tg):
    async with running_bot(with_kyiv_police(tmp_path, tg)) as app:
        await report_from(Child(app, tg, 681), "Kyiv", "Kyiv: a stranger posts mean comments", consent="consent.police")
        await report_from(Child(app, tg, 682), "Kyiv", "Kyiv: someone else posts mean comments")
        admin, oksana = Staff(app, tg, ADMIN, "Ada", chat=KYIV), Staff(app, tg, 800061, "Oksana", chat=KYIV)
        await grant(admin, oksana, "counsellor")
        escalated = tg.topics(KYIV)[0]
        card = next(m for m in tg.messages_in(KYIV, escalated.thread_id) if m.from_bot)  # the first case's
        await oksana.press(card, "operator.button.take")
        await oksana.press(card, "operator.button.escalate")
        police_admin = Staff(app, tg, ADMIN, "Ada", chat=KYIV_POLICE)
        await police_admin.write("/queue")
        queue = bot_lines(tg, KYIV_POLICE)[-1]
        assert escalated.name.split(" · ")[0] in queue and tg.topics(KYIV)[1].name.split(" · ")[0] not in queue
