"""A right receipt code never silently moves a case (README, Security: receipts).

A case keeps the chat that sent it (cases.conversation_key) and every further chat that proved its code
(case_chats). Staff answers go to all of them. When a further chat proves the code, the earlier ones
are told at once, with a "That wasn't me" button: pressed, it detaches every chat that came after the
presser's and alerts staff in the case's topic (urgent). Staff hear of a new chat only when it truly is
another chat."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.outbox import Outbox
from dialogs.actions import ReceiptOutcome
from dialogs.engine import Engine
from storage import Case, Kind, Priority, Target, Transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChatOfCase:
    channel: str
    conversation_key: str


async def chats_of(tx: Transaction, case: Case) -> list[ChatOfCase]:
    """Every chat a case's answers go to, the one that sent it first (none after /forget in all of them)."""
    chats = [ChatOfCase(case.channel, case.conversation_key)] if case.conversation_key else []
    return chats + [ChatOfCase(row.channel, row.conversation_key) for row in await tx.case_chats.for_case(case.id)]


class Reconnection:
    def __init__(self, engine: Engine, outbox: Outbox) -> None:
        self.engine, self.outbox = engine, outbox

    async def attach(self, tx: Transaction, case: Case, key: str, channel: str) -> ReceiptOutcome:
        """A chat proved the case's code: connect it too, and tell the earlier chats and staff."""
        earlier = await chats_of(tx, case)
        if any(chat.conversation_key == key for chat in earlier):
            return ReceiptOutcome.ALREADY_HERE  # nothing changes: nobody is told anything
        await tx.case_chats.add(case.id, key, channel)
        await tx.audit.add(case.id, "child", None, "reconnected")
        await self.outbox.notice(tx, case, "operator.notice.reconnected", channel=channel)
        text = self.engine.say(case.language, "receipt.opened_elsewhere", case_number=case.number)
        buttons = self.engine.not_me_buttons(case.language, case.number)
        for chat in earlier:
            await self.outbox.say_to_child(tx, chat.channel, chat.conversation_key, text, buttons)
        log.info("case reconnected", extra={"case": case.number, "chats": len(earlier) + 1})
        return ReceiptOutcome.FOUND

    async def disown(self, tx: Transaction, case: Case, key: str) -> int:
        """"That wasn't me" from a chat of the case: detach every chat connected after it; return how many."""
        rows = await tx.case_chats.for_case(case.id)
        if case.conversation_key != key:
            mine = next((row for row in rows if row.conversation_key == key), None)
            if mine is None:
                return 0  # this chat was detached itself meanwhile
            rows = [row for row in rows if row.id > mine.id]
        await tx.case_chats.detach([row.id for row in rows])
        if not rows:
            return 0  # pressed again: done already
        text = self.engine.say(case.language, "receipt.detached", case_number=case.number)
        for row in rows:
            await self.outbox.say_to_child(tx, row.channel, row.conversation_key, text)
        await tx.audit.add(case.id, "child", None, "disowned")
        await self.outbox.to_staff(tx, Target.OPERATOR, case, Kind.NOTICE,
                                   {"key": "operator.notice.not_me", "slots": {"count": len(rows)}}, Priority.URGENT)
        log.warning("receipt code used by someone else", extra={"case": case.number, "chats": len(rows)})
        return len(rows)
