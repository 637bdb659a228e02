"""What staff do with a case: moderate, take, escalate, close, answer. Roles decide who may do what."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.outbox import Kind, Outbox
from bot.statistics.record import record_answer, record_case_change
from dialogs.engine import Engine

log = logging.getLogger(__name__)


class CaseAction(StrEnum):
    ACCEPT = "accept"
    SPAM = "spam"
    URGENT = "urgent"
    TAKE = "take"
    ESCALATE = "escalate"
    CLOSE = "close"  # shows the outcomes
    OUTCOME = "outcome"  # closes with the outcome in the argument
    CANCEL = "cancel"
    CONVERT = "convert"  # asks the child whether their question may become a report


OUTCOMES = ("advice", "referred", "escalated", "no_answer", "spam")

ALLOWED: dict[CaseAction, frozenset[str]] = {
    CaseAction.ACCEPT: frozenset({"admin", "moderator"}),
    CaseAction.SPAM: frozenset({"admin", "moderator"}),
    CaseAction.URGENT: frozenset({"admin", "moderator", "counsellor"}),
    CaseAction.TAKE: frozenset({"admin", "counsellor"}),
    CaseAction.ESCALATE: frozenset({"admin", "counsellor"}),
    CaseAction.CLOSE: frozenset({"admin", "moderator", "counsellor"}),
    CaseAction.OUTCOME: frozenset({"admin", "moderator", "counsellor"}),
    CaseAction.CANCEL: frozenset({"admin", "moderator", "counsellor"}),
    CaseAction.CONVERT: frozenset({"admin", "counsellor"}),
}
# Which statuses each action applies to; a press on an outdated card does nothing harmful.
FROM_STATUS: dict[CaseAction, frozenset[str]] = {
    CaseAction.ACCEPT: frozenset({"new"}),
    CaseAction.SPAM: frozenset({"new", "accepted"}),
    CaseAction.URGENT: frozenset({"new", "accepted", "assigned", "escalated"}),
    CaseAction.TAKE: frozenset({"new", "accepted", "assigned"}),
    CaseAction.ESCALATE: frozenset({"assigned"}),
    CaseAction.CLOSE: frozenset({"assigned", "escalated", "accepted"}),
    CaseAction.OUTCOME: frozenset({"assigned", "escalated", "accepted"}),
    CaseAction.CANCEL: frozenset({"new", "accepted", "assigned", "escalated"}),
    CaseAction.CONVERT: frozenset({"assigned"}),
}


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int
    role: str
    alias: str


class Refused(Exception):
    """The actor may not do this; the text key says why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class Casework:
    def __init__(self, engine: Engine, outbox: Outbox, settings: Any) -> None:
        self.engine, self.outbox, self.settings = engine, outbox, settings

    @property
    def lang(self) -> str:
        """Staff read the deployment's language (DEFAULT_LANGUAGE)."""
        return self.engine.default_language

    async def actor(self, tx: Any, user_id: int) -> Actor | None:
        """The staff member behind a Telegram user id, or None for everyone else."""
        member = await tx.staff.get(user_id)
        if user_id in self.settings.admin_ids:
            return Actor(user_id, "admin", member.alias if member else "Admin")
        return Actor(user_id, str(member.role), member.alias) if member else None

    async def act(self, tx: Any, actor: Actor, case: Any, action: CaseAction, argument: str = "") -> Any:
        """Apply a card button; returns the updated case. Raises Refused."""
        if actor.role not in ALLOWED[action]:
            raise Refused("operator.refused")
        if case.status not in FROM_STATUS[action]:
            return case  # an old card: nothing to do, the card will be refreshed
        now = tx.now
        changes: dict[str, Any] = {}
        notice, slots = None, {"alias": actor.alias}
        if action is CaseAction.ACCEPT:
            changes, notice = {"status": "accepted", "accepted_at": now}, "operator.notice.accepted"
        elif action is CaseAction.SPAM:
            changes = {"status": "spam", "outcome": "spam", "closed_at": now, "assignee_id": actor.user_id}
        elif action is CaseAction.URGENT:
            if case.urgent:
                return case
            changes, notice = {"urgent": True}, "operator.notice.marked_urgent"
        elif action is CaseAction.TAKE:
            if case.assignee_id is not None and case.assignee_id != actor.user_id and actor.role != "admin":
                raise Refused("operator.refused")
            changes = {"status": "assigned", "assignee_id": actor.user_id, "accepted_at": case.accepted_at or now}
            notice = "operator.notice.taken"
        elif action is CaseAction.ESCALATE:
            if case.consent != "police" or not self.settings.police_chat_id:
                raise Refused("operator.refused")
            changes, notice = {"status": "escalated"}, "operator.notice.escalated"
        elif action is CaseAction.CONVERT:
            if case.kind != "consultation" or case.conversation_key is None:
                return case
            text = self.engine.say(case.language, "notice.convert_ask", case_number=case.number)
            await self.outbox.say_to_child(tx, case.channel, case.conversation_key, text,
                                           self.engine.convert_buttons(case.language))
            await tx.audit.add(case.id, actor.alias, actor.user_id, action.value)
            await self.outbox.notice(tx, case, "operator.notice.convert_asked")
            return case
        elif action is CaseAction.OUTCOME:
            if argument not in OUTCOMES:
                return case
            changes = {"status": "closed", "outcome": argument, "closed_at": now}
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
            await self.outbox.case_card(tx, case, target="police")
        await self._tell_child(tx, case, action)
        return case

    async def _tell_child(self, tx: Any, case: Any, action: CaseAction) -> None:
        # Status news goes only to a child who asked for an answer: a message from the bot could be
        # seen by someone the child fears, and they chose not to be contacted.
        if not case.reply_wanted or case.conversation_key is None:
            return
        key = {CaseAction.TAKE: "notice.taken", CaseAction.ESCALATE: "notice.escalated",
               CaseAction.OUTCOME: "notice.closed"}.get(action)
        if key is None or (action is CaseAction.OUTCOME and case.outcome == "spam"):
            return
        text = self.engine.say(case.language, key, case_number=case.number)
        buttons = self.engine.rating_buttons(case.language) if action is CaseAction.OUTCOME else ()
        await self.outbox.say_to_child(tx, case.channel, case.conversation_key, text, buttons)

    async def answer_child(self, tx: Any, actor: Actor, case: Any, target: str, text: str | None,
                           file: dict | None = None) -> str | None:
        """Send a staff message to the child; returns a notice key when it cannot be sent."""
        if case.status in ("closed", "spam"):
            return "operator.notice.case_closed"
        if target == "police":
            if actor.role not in ("police", "admin"):
                return None
            if not case.reply_wanted or case.consent != "police":
                return "operator.notice.police_no_contact"
        else:
            if actor.role not in ("counsellor", "admin") or (actor.role != "admin" and case.assignee_id != actor.user_id):
                return "operator.notice.not_holder"
            if not case.reply_wanted:
                return "operator.notice.no_reply"
        if case.conversation_key is None:
            return "operator.notice.forgotten"
        role = "police" if target == "police" else "counsellor"
        if file is not None:
            # file: {"message_id", "kind", "file_ref"} of the staff message; Telegram copies it by id,
            # other channels fetch the file by its file_ref.
            signature = self.engine.say(case.language, f"notice.{role}_file")
            payload = {"chat": target, **file, "caption": f"{signature}\n{text}" if text else signature}
            kind = Kind.STAFF_COPY
        else:
            payload = {"text": self.engine.say(case.language, f"notice.{role}_says", text=text or "")}
            kind = Kind.STAFF_TEXT
        await self.outbox.to_child(tx, case.channel, case.conversation_key, kind, payload, case_id=case.id)
        await tx.audit.add(case.id, actor.alias, actor.user_id, "answer", target)
        await record_answer(tx, case)  # statistics
        return None
