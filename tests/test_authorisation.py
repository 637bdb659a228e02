"""Who may act on whose case, as a matrix: every role × every staff action × holder or not × consent,
through forged button presses and commands, in the operator chat, the police chat and a private chat.

The expected matrix is written out here on its own (not derived from bot/permissions.py), so a change
to the rules must change this page too."""
from __future__ import annotations

import itertools
from typing import Any

import pytest

from bot.cards import CardPress
from bot.permissions import CaseAction
from storage import CaseKind, CaseStatus, Consent, Role, Target
from tests.support import ADMIN, OPERATOR, POLICE, bot_settings, running_bot, settled

ACTORS = {"admin": ADMIN, "moderator": 801, "holder": 802, "colleague": 803, "police": 804, "stranger": 805,
          "coordinator": 806}
ROLES = {"moderator": Role.MODERATOR, "holder": Role.COUNSELLOR, "colleague": Role.COUNSELLOR, "police": Role.POLICE}
# The state each action applies to: a case held by "holder" once it is past moderation.
STATE = {CaseAction.ACCEPT: CaseStatus.NEW, CaseAction.SPAM: CaseStatus.NEW}
# In the operator chat, who may (consent to police needed where marked).
OPERATOR_CHAT = {
    CaseAction.ACCEPT: {"admin", "moderator"},
    CaseAction.SPAM: {"admin", "moderator"},
    CaseAction.URGENT: {"admin", "moderator", "holder"},
    CaseAction.TAKE: {"admin", "holder"},
    CaseAction.ESCALATE: {"admin", "holder"},  # and only where the child consented to police
    CaseAction.OUTCOME: {"admin", "moderator", "holder"},
    CaseAction.CONVERT: {"admin", "holder"},
    CaseAction.ANSWER: {"admin", "holder"},
    CaseAction.TRANSFER: {"admin", "moderator", "holder"},  # /transfer REGION, to Kyiv's own chat
}
# In the police chat only police and admins answer, and only on cases escalated with consent; no card action.
POLICE_CHAT = {CaseAction.ANSWER: {"admin", "police"}}
CHATS = {"operator": OPERATOR, "police": POLICE, "private": None}
KYIV = -1001000000011  # a region's own operator chat: where /transfer kyiv sends a case


def expected(action: CaseAction, consent: Consent, chat: str) -> set[str]:
    if chat == "operator":
        allowed = OPERATOR_CHAT[action]
        return set() if action is CaseAction.ESCALATE and consent is not Consent.POLICE else allowed
    if chat == "police":
        return POLICE_CHAT.get(action, set()) if consent is Consent.POLICE else set()
    return set()


async def make_case(app: Any, tg: Any, number: int, action: CaseAction, consent: Consent, chat: str) -> Any:
    """A case in the state the action applies to, with its topic in the chat it is tried in."""
    status = STATE.get(action, CaseStatus.ESCALATED if chat == "police" else CaseStatus.ASSIGNED)
    kind = CaseKind.CONSULTATION if action is CaseAction.CONVERT else CaseKind.REPORT
    where = OPERATOR if chat != "police" else POLICE
    topic = (await tg._api_createForumTopic({"chat_id": where, "name": str(number)}, {}))["message_thread_id"]
    async with app.db.transaction() as tx:
        case = await tx.cases.create(
            number=str(number), kind=kind, channel="telegram", language="en", country="UA", consent=consent,
            reply_wanted=True, status=status, conversation_key=f"child-{number}", answers={"what": "x"},
            assignee_id=None if status is CaseStatus.NEW else ACTORS["holder"])
        return await tx.cases.set_topic(case.id, Target.POLICE if chat == "police" else Target.OPERATOR, topic_id=topic)


def forge(tg: Any, user_id: int, chat_id: int, topic: int | None, action: CaseAction, case_id: int) -> None:
    """What a modified client can send: a press of a card button that need not be on any message."""
    if action is CaseAction.ANSWER:
        tg.user_sends_text(user_id, "Here is what you can do.", chat_id=chat_id, thread_id=topic)
        return
    if action is CaseAction.TRANSFER:
        tg.user_sends_text(user_id, "/transfer kyiv", chat_id=chat_id, thread_id=topic)
        return
    argument = "advice" if action is CaseAction.OUTCOME else ""
    chat = tg._chat_dict(tg.chats[chat_id])
    tg._push_update("callback_query", {
        "id": str(user_id * 1000 + case_id), "from": tg._user_dict(user_id), "chat_instance": "1",
        "message": {"message_id": 1, "date": 1, "chat": chat, "message_thread_id": topic},
        "data": CardPress(action, case_id, argument).pack()})


@pytest.mark.parametrize("chat", list(CHATS))
async def test_every_role_and_action_as_the_rules_say(tmp_path, tg, chat: str) -> None:
    tg.add_group(KYIV, "Kyiv operators", is_forum=True)
    async with running_bot(bot_settings(tmp_path, tg, operator_chats=f"kyiv={KYIV}")) as app:
        async with app.db.transaction() as tx:
            for name, role in ROLES.items():
                await tx.staff.grant(ACTORS[name], role, name, ADMIN)
        for name, user_id in ACTORS.items():
            tg.add_user(user_id, first_name=name)
            for group in (OPERATOR, POLICE):
                tg.add_member(group, user_id, "member")
        numbers = itertools.count(100000)
        wrong = []
        for action, consent, actor in itertools.product(OPERATOR_CHAT, (Consent.COUNSELLOR, Consent.POLICE), ACTORS):
            case = await make_case(app, tg, next(numbers), action, consent, chat)
            topic = case.topic(Target.POLICE if chat == "police" else Target.OPERATOR).topic_id
            chat_id = CHATS[chat] if CHATS[chat] is not None else ACTORS[actor]
            forge(tg, ACTORS[actor], chat_id, topic if chat != "private" else None, action, case.id)
            await settled(app, tg)
            async with app.db.transaction() as tx:
                done = any(entry.actor_id == ACTORS[actor] and entry.action == action.value
                           for entry in await tx.audit.for_case(case.id))
            if done != (actor in expected(action, consent, chat)):
                wrong.append(f"{actor} {action.value} ({consent.value}) in the {chat} chat: {'done' if done else 'refused'}")
        assert not wrong, "\n".join(wrong)
