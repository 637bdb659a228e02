"""Message ids: a child's private chat (for quick-exit deletion) and relayed case messages (for replies)."""
from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, bindparam, delete, select

from storage.fast_path import prepared
from storage.models import CaseMessageRow, ChatMessageRow, table
from storage.records import CaseMessage
from storage.repositories.base import Repository
from storage.values import Target

C = table(ChatMessageRow)
R = table(CaseMessageRow)


def _newest_link(*where: ColumnElement[bool]) -> Select[Any]:
    return prepared(select(R).where(*where).order_by(R.c.id.desc()).limit(1))


# Messages are remembered and looked up on most steps: those statements are built once, with bind parameters for
# the values, so SQLAlchemy neither rebuilds nor re-hashes them on each call (bench/README.md, findings, item 3).
_ADD_CHAT = prepared(
    C.insert()
    .values(
        conversation_key=bindparam("conversation_key"), message_id=bindparam("message_id"),
        from_bot=bindparam("from_bot"), at=bindparam("at"),
    )
)
_ADD_LINK = prepared(
    R.insert()
    .values(
        case_id=bindparam("case_id"), chat=bindparam("chat"), child_message_id=bindparam("child_message_id"),
        staff_message_id=bindparam("staff_message_id"), at=bindparam("at"),
    )
    .returning(R.c.id)
)
_BY_CHILD_MESSAGE = _newest_link(R.c.case_id == bindparam("case_id"), R.c.child_message_id == bindparam("message_id"))
_BY_STAFF_MESSAGE = _newest_link(R.c.chat == bindparam("chat"), R.c.staff_message_id == bindparam("message_id"))


class ChatMessages(Repository):
    """The `chat_messages` table."""

    __slots__ = ()

    async def add(self, conversation_key: str, message_id: int, from_bot: bool) -> None:
        """Remember a message in the child's chat."""
        values = {
            "conversation_key": conversation_key, "message_id": message_id, "from_bot": from_bot, "at": self._now(),
        }  # fmt: skip
        await self._session.execute(_ADD_CHAT, values)

    async def for_conversation(self, key: str) -> list[int]:
        """Message ids of a child's chat, oldest first."""
        statement = select(C.c.message_id).where(C.c.conversation_key == key).order_by(C.c.id)
        return [int(message_id) for message_id in (await self._session.execute(statement)).scalars()]

    async def delete_for(self, key: str) -> int:
        """Forget a child's message ids; return how many."""
        return await self._affected(delete(C).where(C.c.conversation_key == key))

    async def forget_before(self, when: datetime) -> int:
        """Forget ids older than `when` (Telegram no longer lets bots delete them)."""
        return await self._affected(delete(C).where(C.c.at < when))


class CaseMessages(Repository):
    """The `case_messages` table."""

    __slots__ = ()

    async def add(
        self, case_id: int, chat: str, child_message_id: int | None = None, staff_message_id: int | None = None
    ) -> int:
        """Link a child's message and its copy in a staff chat (or a staff message and its copy to the child)."""
        values = {
            "case_id": case_id, "chat": str(Target(chat)), "child_message_id": child_message_id,
            "staff_message_id": staff_message_id, "at": self._now(),
        }  # fmt: skip
        return int((await self._session.execute(_ADD_LINK, values)).scalar_one())

    async def by_child_message(self, case_id: int, child_message_id: int) -> CaseMessage | None:
        """The newest link of a child's message in a case."""
        return await self._newest(_BY_CHILD_MESSAGE, {"case_id": case_id, "message_id": child_message_id})

    async def by_staff_message(self, chat: str, staff_message_id: int) -> CaseMessage | None:
        """The newest link of a message in a staff chat (`operator` or `police`)."""
        return await self._newest(_BY_STAFF_MESSAGE, {"chat": chat, "message_id": staff_message_id})

    async def for_case(self, case_id: int) -> list[CaseMessage]:
        """Every link of a case, oldest first."""
        statement = select(R).where(R.c.case_id == case_id).order_by(R.c.id)
        return [_record(row) for row in await self._session.execute(statement)]

    async def delete_for_cases(self, case_ids: Collection[int]) -> int:
        """Forget which staff message copied which of the child's (the child erased their data); return how many."""
        if not case_ids:
            return 0
        return await self._affected(delete(R).where(R.c.case_id.in_(list(case_ids))))

    async def _newest(self, statement: Select[Any], params: dict[str, Any]) -> CaseMessage | None:
        row = (await self._session.execute(statement, params)).one_or_none()
        return None if row is None else _record(row)


def _record(row: Row[Any]) -> CaseMessage:
    fields = dict(row._mapping)
    fields["chat"] = Target(fields["chat"])
    return CaseMessage(**fields)
