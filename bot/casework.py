"""What staff do with a case: moderate, take, escalate, close, answer. Roles decide who may do what."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.outbox import Outbox
from bot.permissions import CaseAction, may, roles_for
from bot.reconnect import chats_of
from bot.settings import Settings
from bot.statistics.record import record_answer, record_case_change
from dialogs.engine import Engine
from storage import FINISHED, Case, CaseKind, CaseStatus, Kind, Outcome, Role, Target, Transaction

log = logging.getLogger(__name__)


NEW, ACCEPTED, ASSIGNED, ESCALATED = CaseStatus.NEW, CaseStatus.ACCEPTED, CaseStatus.ASSIGNED, CaseStatus.ESCALATED

# Which statuses each action applies to; a press on an outdated card does nothing harmful.
FROM_STATUS: dict[CaseAction, frozenset[CaseStatus]] = {
    CaseAction.ACCEPT: frozenset({NEW}),
    CaseAction.SPAM: frozenset({NEW, ACCEPTED}),
    CaseAction.URGENT: frozenset({NEW, ACCEPTED, ASSIGNED, ESCALATED}),
    CaseAction.TAKE: frozenset({NEW, ACCEPTED, ASSIGNED}),
    CaseAction.ESCALATE: frozenset({ASSIGNED}),
    CaseAction.CLOSE: frozenset({ASSIGNED, ESCALATED, ACCEPTED}),
    CaseAction.OUTCOME: frozenset({ASSIGNED, ESCALATED, ACCEPTED}),
    CaseAction.CANCEL: frozenset({NEW, ACCEPTED, ASSIGNED, ESCALATED}),
    CaseAction.CONVERT: frozenset({ASSIGNED}),
}


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int
    role: Role
    alias: str


class Refused(Exception):
    """The actor may not do this; the text key says why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class Casework:
    def __init__(self, engine: Engine, outbox: Outbox, settings: Settings) -> None:
        self.engine, self.outbox, self.settings = engine, outbox, settings

    @property
    def lang(self) -> str:
        """Staff read the deployment's language (DEFAULT_LANGUAGE)."""
        return self.engine.default_language

    async def actor(self, tx: Transaction, user_id: int) -> Actor | None:
        """The staff member behind a Telegram user id, or None for everyone else."""
        member = await tx.staff.get(user_id)
        if user_id in self.settings.admin_ids:
            return Actor(user_id, Role.ADMIN, member.alias if member else "Admin")
        return Actor(user_id, member.role, member.alias) if member else None

    def check(self, actor: Actor, action: CaseAction, case: Case, chat: Target = Target.OPERATOR) -> None:
        """Raise Refused unless `actor` may do `action` to `case` from `chat` (bot/permissions.py)."""
        if not may(actor.role, actor.user_id, action, case, chat):
            log.info("staff action refused", extra={"case": case.number, "action": action.value, "role": actor.role.value})
            raise Refused("operator.refused")

    async def act(self, tx: Transaction, actor: Actor, case: Case, action: CaseAction, argument: str = "",
                  chat: Target = Target.OPERATOR) -> Case:
        """Apply a card button; returns the updated case. Raises Refused."""
        self.check(actor, action, case, chat)
        if case.status not in FROM_STATUS[action]:
            return case  # an old card: nothing to do, the card will be refreshed
        now = tx.now
        changes: dict[str, Any] = {}
        notice, slots = None, {"alias": actor.alias}
        if action is CaseAction.ACCEPT:
            changes, notice = {"status": ACCEPTED, "accepted_at": now}, "operator.notice.accepted"
        elif action is CaseAction.SPAM:
            changes = {"status": CaseStatus.SPAM, "outcome": Outcome.SPAM, "closed_at": now, "assignee_id": actor.user_id}
        elif action is CaseAction.URGENT:
            if case.urgent:
                return case
            changes, notice = {"urgent": True}, "operator.notice.marked_urgent"
        elif action is CaseAction.TAKE:
            changes = {"status": ASSIGNED, "assignee_id": actor.user_id, "accepted_at": case.accepted_at or now}
            notice = "operator.notice.taken"
        elif action is CaseAction.ESCALATE:
            if not self.settings.police_chat_id:
                raise Refused("operator.refused")
            changes, notice = {"status": ESCALATED}, "operator.notice.escalated"
        elif action is CaseAction.CONVERT:
            chats = await chats_of(tx, case)
            if case.kind is not CaseKind.CONSULTATION or not chats:
                return case
            text = self.engine.say(case.language, "notice.convert_ask", case_number=case.number)
            for chat in chats:
                await self.outbox.say_to_child(tx, chat.channel, chat.conversation_key, text,
                                               self.engine.convert_buttons(case.language, case.number))
            await tx.audit.add(case.id, actor.alias, actor.user_id, action.value)
            await self.outbox.notice(tx, case, "operator.notice.convert_asked")
            return case
        elif action is CaseAction.OUTCOME:
            if argument not in {outcome.value for outcome in Outcome}:
                return case
            changes = {"status": CaseStatus.CLOSED, "outcome": Outcome(argument), "closed_at": now}
            notice, slots["outcome"] = "operator.notice.closed", self.engine.say(self.lang, f"operator.outcome.{argument}")
        else:  # CLOSE and CANCEL only change the buttons on the card
            return case
        await record_case_change(tx, case, changes)  # statistics
        case = await tx.cases.update(case.id, **changes)
        await tx.audit.add(case.id, actor.alias, actor.user_id, action.value, argument or None)
        log.info("case action", extra={"case": case.number, "action": action.value})
        await self.outbox.case_changed(tx, case)  # staff notices below stay in the operator chat
        if notice:
            await self.outbox.notice(tx, case, notice, **slots)
        if action is CaseAction.ESCALATE:
            await self.outbox.case_card(tx, case, target=Target.POLICE)
        await self._tell_child(tx, case, action)
        return case

    async def _tell_child(self, tx: Transaction, case: Case, action: CaseAction) -> None:
        # Status news goes only to a child who asked for an answer: a message from the bot could be
        # seen by someone the child fears, and they chose not to be contacted.
        if not case.reply_wanted:
            return
        key = {CaseAction.TAKE: "notice.taken", CaseAction.ESCALATE: "notice.escalated",
               CaseAction.OUTCOME: "notice.closed"}.get(action)
        if key is None or (action is CaseAction.OUTCOME and case.outcome == Outcome.SPAM):
            return
        text = self.engine.say(case.language, key, case_number=case.number)
        buttons = self.engine.rating_buttons(case.language, case.number) if action is CaseAction.OUTCOME else ()
        for chat in await chats_of(tx, case):  # every chat that proved the receipt code (bot/reconnect.py)
            await self.outbox.say_to_child(tx, chat.channel, chat.conversation_key, text, buttons)

    async def answer_child(self, tx: Transaction, actor: Actor, case: Case, target: Target, text: str | None,
                           file: dict | None = None) -> str | None:
        """Send a staff message to the child; returns a notice key when it cannot be sent."""
        if case.status in FINISHED:
            return "operator.notice.case_closed"
        if target is Target.POLICE:
            if actor.role not in roles_for(CaseAction.ANSWER, Target.POLICE):
                return None  # not police: what others write in the police chat is never relayed
            if not case.reply_wanted or not may(actor.role, actor.user_id, CaseAction.ANSWER, case, target):
                return "operator.notice.police_no_contact"
        else:
            if not may(actor.role, actor.user_id, CaseAction.ANSWER, case, target):
                return "operator.notice.not_holder"
            if not case.reply_wanted:
                return "operator.notice.no_reply"
        chats = await chats_of(tx, case)
        if not chats:
            return "operator.notice.forgotten"
        role = "police" if target is Target.POLICE else "counsellor"
        if file is not None:
            # file: {"message_id", "kind", "file_ref"} of the staff message; Telegram copies it by id,
            # other channels fetch the file by its file_ref.
            signature = self.engine.say(case.language, f"notice.{role}_file")
            payload = {"chat": target.value, **file, "caption": f"{signature}\n{text}" if text else signature,
                       "lang": case.language, "region": case.region}  # copied from the case's chat
            kind = Kind.STAFF_COPY
        else:
            payload = {"text": self.engine.say(case.language, f"notice.{role}_says", text=text or "")}
            kind = Kind.STAFF_TEXT
        for chat in chats:
            await self.outbox.to_child(tx, chat.channel, chat.conversation_key, kind, payload, case_id=case.id)
        await tx.audit.add(case.id, actor.alias, actor.user_id, "answer", target.value)
        await record_answer(tx, case)  # statistics
        return None
