"""Cases: creation with unique numbers, lookups by every handle staff or child hold, and sweeps."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, bindparam, delete, func, literal_column, or_, select, update

from storage.errors import DuplicateNumber, NotFound
from storage.fast_path import prepared
from storage.models import AuditRow, CaseChatRow, CaseMessageRow, CaseRow, table
from storage.records import Case
from storage.repositories.base import Repository
from storage.values import FINISHED, KEEP, CaseKind, CaseStatus, Keep, Target

T = table(CaseRow)
A = table(AuditRow)
CC = table(CaseChatRow)
WRITABLE = frozenset(T.c.keys()) - {"id"}
REQUIRED = frozenset({"number", "kind", "channel", "language", "country", "consent"})


def _newest_where(*where: ColumnElement[bool]) -> Select[Any]:
    return prepared(select(T).where(*where).order_by(T.c.id.desc()).limit(1))


# Lookups a child's step or a case card makes are built once, with bind parameters for the values:
# SQLAlchemy then neither rebuilds nor re-hashes them on each call (bench/README.md, findings, item 3).
_BY_ID = _newest_where(T.c.id == bindparam("case_id"))
_BY_NUMBER = _newest_where(T.c.number == bindparam("number"))
_BY_OPERATOR_TOPIC = _newest_where(T.c.operator_topic_id == bindparam("topic_id"))
_BY_POLICE_TOPIC = _newest_where(T.c.police_topic_id == bindparam("topic_id"))
_BY_RECEIPT = _newest_where(T.c.receipt_hash == bindparam("receipt_hash"))
# Every step asks for the child's open case: the finished statuses are written into the SQL, since an
# IN list of bound values is re-rendered on every execution. A child's cases are those they sent and
# those their chat opened with the receipt code (case_chats).
def _of_child_open(conversation_key: ColumnElement[Any]) -> tuple[ColumnElement[bool], ...]:
    return (
        or_(T.c.conversation_key == conversation_key,
            T.c.id.in_(select(CC.c.case_id).where(CC.c.conversation_key == conversation_key))),
        *(T.c.status != literal_column(f"'{status}'") for status in sorted(FINISHED)),
    )


def has_open_case(conversation_key: ColumnElement[Any]) -> ColumnElement[bool]:
    """EXISTS: the child of that conversation has a case `open_with_news` would list."""
    return select(T.c.id).where(*_of_child_open(conversation_key)).exists()


_OF_CHILD_OPEN = _of_child_open(bindparam("conversation_key"))
_OPEN_FOR = _newest_where(*_OF_CHILD_OPEN)


def _last_by_staff(column: Any) -> Any:
    """The newest audit entry of the case written by a staff member (children's have no actor id)."""
    newest = select(column).where(A.c.case_id == T.c.id, A.c.actor_id.is_not(None)).order_by(A.c.id.desc())
    return newest.limit(1).scalar_subquery()


# A child's every step reads their open cases, with what staff did last on each (the news /mycase lists).
_OPEN_WITH_NEWS = prepared(
    select(T, _last_by_staff(A.c.action).label("staff_action"), _last_by_staff(A.c.at).label("staff_at"))
    .where(*_OF_CHILD_OPEN)
    .order_by(T.c.id)
)
_LATEST_FOR = _newest_where(T.c.conversation_key == bindparam("conversation_key"))
_TOPIC_COLUMNS = {
    Target.OPERATOR: ("operator_topic_id", "operator_card_message_id"),
    Target.POLICE: ("police_topic_id", "police_card_message_id"),
}
# SET takes the columns present in the parameters (besides "case_id"); each set of columns compiles once.
_UPDATE = prepared(update(T).where(T.c.id == bindparam("case_id")).returning(*T.c))


@dataclass(frozen=True, slots=True)
class OpenCaseNews:
    """An open case and the last thing staff did on it: an audit action ("answer", "take"…) and when."""

    case: Case
    staff_action: str | None
    staff_at: datetime | None


class Cases(Repository):
    """The `cases` table; `answers` is sealed."""

    __slots__ = ()

    async def create(self, **fields: Any) -> Case:
        """Insert a case (status new unless given); DuplicateNumber if `number` is taken."""
        missing = REQUIRED - fields.keys()
        if missing:
            raise TypeError(f"Cases.create() missing fields: {', '.join(sorted(missing))}")
        now = self._now()
        values = self._values({"status": CaseStatus.NEW, "answers": {}, "created_at": now, "updated_at": now} | fields)
        case_id = await self._insert_new(T, values, ["number"], T.c.id)
        if case_id is None:
            raise DuplicateNumber("case number already taken")
        return await self._require(case_id)

    async def get(self, case_id: int) -> Case | None:
        """The case with that id."""
        return await self._newest(_BY_ID, {"case_id": case_id})

    async def by_number(self, number: str) -> Case | None:
        """The case with that public number."""
        return await self._newest(_BY_NUMBER, {"number": number})

    async def by_operator_topic(self, topic_id: int) -> Case | None:
        """The case discussed in that operator-chat topic."""
        return await self._newest(_BY_OPERATOR_TOPIC, {"topic_id": topic_id})

    async def by_police_topic(self, topic_id: int) -> Case | None:
        """The case discussed in that police-chat topic."""
        return await self._newest(_BY_POLICE_TOPIC, {"topic_id": topic_id})

    async def with_topic(self, target: Target, topic_id: int) -> list[Case]:
        """Every case with that topic id in a staff chat of `target`, newest first (regions' chats
        number their topics each on their own: the caller picks the one routed to its chat)."""
        column = T.c.police_topic_id if target is Target.POLICE else T.c.operator_topic_id
        statement = select(T).where(column == topic_id).order_by(T.c.id.desc())
        return [self._record(row) for row in await self._session.execute(statement)]

    async def by_receipt(self, receipt_hash: str) -> Case | None:
        """The case whose receipt code hashes to `receipt_hash`."""
        return await self._newest(_BY_RECEIPT, {"receipt_hash": receipt_hash})

    async def open_for(self, conversation_key: str) -> Case | None:
        """The newest case of that conversation that is neither closed nor spam."""
        return await self._newest(_OPEN_FOR, {"conversation_key": conversation_key})

    async def open_with_news(self, conversation_key: str) -> list[OpenCaseNews]:
        """Every case of that conversation that is neither closed nor spam, oldest first, with its news."""
        rows = await self._session.execute(_OPEN_WITH_NEWS, {"conversation_key": conversation_key})
        news = []
        for row in rows:
            values = dict(row._mapping)
            action, at = values.pop("staff_action"), values.pop("staff_at")
            news.append(OpenCaseNews(self._case(values), action, at))
        return news

    async def latest_for(self, conversation_key: str) -> Case | None:
        """The newest case of that conversation, whatever its status (for the child's rating)."""
        return await self._newest(_LATEST_FOR, {"conversation_key": conversation_key})

    async def by_topic(self, target: Target, topic_id: int) -> Case | None:
        """The case discussed in that topic of the operator or police chat."""
        return await (self.by_police_topic if target is Target.POLICE else self.by_operator_topic)(topic_id)

    async def set_topic(self, case_id: int, target: Target, *, topic_id: int | None | Keep = KEEP,
                        card_message_id: int | None | Keep = KEEP) -> Case:
        """Record (or clear, with None) the case's topic or card in a staff chat."""
        topic_column, card_column = _TOPIC_COLUMNS[target]
        changes = {column: value for column, value in ((topic_column, topic_id), (card_column, card_message_id))
                   if value is not KEEP}
        return await self.update(case_id, **changes)

    async def advance(self, case_id: int, column: str, expected: Any, new: Any) -> bool:
        """Set a column only if it still holds `expected`: how a sweep claims a case across processes."""
        if column not in ("sla_level", "checkin_sent"):
            raise TypeError(f"{column} is not a sweep column")
        statement = update(T).where(T.c.id == case_id, T.c[column] == expected).values({column: new})
        return await self._affected(statement) > 0

    async def update(self, case_id: int, **fields: Any) -> Case:
        """Change columns (updated_at set to now unless given); NotFound if the case is gone."""
        if ("answers" in fields) != ("number" in fields):  # the answers are sealed to the number
            current = await self._require(case_id)
            fields = {"number": current.number, "answers": current.answers} | fields
        values = self._values({"updated_at": self._now()} | fields)
        row = (await self._session.execute(_UPDATE, {"case_id": case_id} | values)).one_or_none()
        if row is None:
            raise NotFound("no such case")
        return self._record(row)

    async def detach_conversation(self, conversation_key: str) -> list[Case]:
        """Cut every case off a child who erased their data; return those cases as they are now."""
        statement = (
            update(T)
            .where(T.c.conversation_key == conversation_key)
            .values(conversation_key=None, updated_at=self._now())
            .returning(*T.c)
        )
        rows = (await self._session.execute(statement)).all()
        return sorted((self._record(row) for row in rows), key=lambda found: found.id)

    async def unaccepted(self, older_than: datetime, urgent: bool, below_level: int) -> list[Case]:
        """New cases created before `older_than` whose SLA reminder level is below `below_level`."""
        return await self._many(
            T.c.status == CaseStatus.NEW,
            T.c.urgent == urgent,
            T.c.created_at < older_than,
            T.c.sla_level < below_level,
        )

    async def in_progress(self, limit: int = 100) -> list[Case]:
        """Cases not closed nor spam: urgent first, then oldest first (a staff chat's queue)."""
        statement = (select(T).where(T.c.status.not_in(list(FINISHED)))
                     .order_by(T.c.urgent.desc(), T.c.created_at, T.c.id).limit(limit))
        return [self._record(row) for row in await self._session.execute(statement)]

    async def checkins_due(self, now: datetime) -> list[Case]:
        """Cases whose check-in time has come and whose check-in is not sent (spam excluded)."""
        return await self._many(T.c.checkin_due_at <= now, T.c.checkin_sent.is_(False), T.c.status != CaseStatus.SPAM)

    async def closed_before(self, when: datetime) -> list[Case]:
        """Closed or spam cases whose closed_at is before `when` (due for the retention purge)."""
        return await self._many(T.c.status.in_(FINISHED), T.c.closed_at < when)

    async def delete(self, case_id: int) -> bool:
        """Delete a case, its relayed-message links and its further chats (audit and statistics stay); True if
        it existed."""
        await self._session.execute(delete(CaseMessageRow).where(CaseMessageRow.case_id == case_id))
        await self._session.execute(delete(CC).where(CC.c.case_id == case_id))
        return await self._affected(delete(T).where(T.c.id == case_id)) > 0

    async def count_by_status(self) -> dict[str, int]:
        """How many cases are in each status (statuses with none are absent)."""
        rows = await self._session.execute(select(T.c.status, func.count()).group_by(T.c.status))
        return {str(status): int(count) for status, count in rows}

    def _values(self, fields: dict[str, Any]) -> dict[str, Any]:
        unknown = fields.keys() - WRITABLE
        if unknown:
            raise TypeError(f"unknown case fields: {', '.join(sorted(unknown))}")
        values = dict(fields)
        # Validate early: a bad value stored now would break every later read.
        if "kind" in values:
            values["kind"] = str(CaseKind(values["kind"]))
        if "status" in values:
            values["status"] = str(CaseStatus(values["status"]))
        if "answers" in values:
            values["answers"] = self._seal(values["answers"], T.name, "answers", values["number"])
        return values

    async def _newest(self, statement: Select[Any], params: dict[str, Any]) -> Case | None:
        row = (await self._session.execute(statement, params)).one_or_none()
        return None if row is None else self._record(row)

    async def _require(self, case_id: int) -> Case:
        found = await self._newest(_BY_ID, {"case_id": case_id})
        if found is None:
            raise NotFound("no such case")
        return found

    async def _many(self, *where: ColumnElement[bool]) -> list[Case]:
        statement = select(T).where(*where).order_by(T.c.created_at, T.c.id)
        return [self._record(row) for row in await self._session.execute(statement)]

    def _record(self, row: Row[Any]) -> Case:
        return self._case(dict(row._mapping))

    def _case(self, values: dict[str, Any]) -> Case:
        """Answers that do not open (Misplaced) read as none: the card shows no answers, never another
        case's, and the case can still be worked on and purged."""
        values["answers"] = self._unseal_or(values["answers"], T.name, "answers", values["number"], {})
        values["kind"] = CaseKind(values["kind"])
        values["status"] = CaseStatus(values["status"])
        return Case(**values)
