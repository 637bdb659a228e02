"""Receipt codes' side tables: the chats that proved a case's code, and wrong codes (per sender, and overall)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from storage.models import CaseChatRow, ReceiptFailureRow, table
from storage.repositories.base import Repository

CC = table(CaseChatRow)
F = table(ReceiptFailureRow)


@dataclass(frozen=True, slots=True)
class CaseChat:
    """A chat that opened a case with its receipt code, after the chat that sent it."""

    id: int
    case_id: int
    conversation_key: str
    channel: str
    at: datetime


class CaseChats(Repository):
    """The `case_chats` table: every further chat a case's answers go to."""

    __slots__ = ()

    async def add(self, case_id: int, conversation_key: str, channel: str) -> bool:
        """Attach a chat to a case; False if it was attached already."""
        values = {"case_id": case_id, "conversation_key": conversation_key, "channel": channel, "at": self._now()}
        return await self._insert_new(CC, values, ["case_id", "conversation_key"], CC.c.id) is not None

    async def for_case(self, case_id: int) -> list[CaseChat]:
        """The chats attached to a case, in the order they proved its code."""
        statement = select(CC).where(CC.c.case_id == case_id).order_by(CC.c.id)
        return [CaseChat(**row._mapping) for row in await self._session.execute(statement)]

    async def detach(self, ids: list[int]) -> int:
        """Detach these chats from their case; return how many."""
        if not ids:
            return 0
        return await self._affected(delete(CC).where(CC.c.id.in_(ids)))

    async def delete_for_conversation(self, conversation_key: str) -> list[int]:
        """Detach a chat from every case (the child erased their data); return those cases' ids."""
        statement = delete(CC).where(CC.c.conversation_key == conversation_key).returning(CC.c.case_id)
        return sorted(int(case_id) for case_id in (await self._session.execute(statement)).scalars())

    async def delete_for_case(self, case_id: int) -> int:
        """Forget every chat of a purged case."""
        return await self._affected(delete(CC).where(CC.c.case_id == case_id))


class ReceiptFailures(Repository):
    """The `receipt_failures` table: one row per wrong code, by a sender hash that names no conversation."""

    __slots__ = ()

    async def add(self, sender: str) -> None:
        await self._session.execute(F.insert().values(sender=sender, at=self._now()))

    async def count(self, since: datetime, sender: str | None = None) -> int:
        """Wrong codes since `since`: of one sender, or of everyone (None)."""
        statement = select(func.count()).select_from(F).where(F.c.at >= since)
        if sender is not None:
            statement = statement.where(F.c.sender == sender)
        return int((await self._session.execute(statement)).scalar_one())

    async def forget_before(self, when: datetime) -> int:
        """Delete wrong codes older than `when` (nothing of them is needed after a day)."""
        return await self._affected(delete(F).where(F.c.at < when))
