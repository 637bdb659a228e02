"""Conversation state per child: optimistic versioning, sealed state and address, daily report cap."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, case, delete, func, select, tuple_, update

from storage.errors import ConcurrentUpdate, Misplaced, NotFound
from storage.fast_path import prepared
from storage.models import ConversationRow, table
from storage.records import Conversation
from storage.repositories.base import Repository, refused
from storage.repositories.cases import has_open_case
from storage.values import KEEP, Keep

T = table(ConversationRow)

# A child's every step reads and saves its conversation. These statements are built once, with bind
# parameters for the values: SQLAlchemy then neither rebuilds nor re-hashes them on each call (bench/README.md,
# findings, item 3).
_GET = prepared(select(T).where(T.c.key == bindparam("key")))
# A step reads the conversation and, in the same statement, whether the child has a case open: most
# children have none, and then their cases need not be read at all.
_GET_FOR_STEP = prepared(select(T, has_open_case(bindparam("key")).label("has_open_case"))
                         .where(T.c.key == bindparam("key")))
_UPDATE = prepared(
    update(T)
    .where(T.c.key == bindparam("b_key"), T.c.version == bindparam("expected_version"))
    .values(
        version=bindparam("version"), channel=bindparam("channel"), state=bindparam("state"),
        updated_at=bindparam("updated_at"),
    )
)
_UPDATE_WITH_ADDRESS = prepared(_UPDATE.values(address=bindparam("address")))
_COUNT_REPORT = prepared(
    update(T)
    .where(T.c.key == bindparam("b_key"))
    .values(
        reports_today=case((T.c.reports_day == bindparam("day"), T.c.reports_today + 1), else_=1),
        reports_day=bindparam("day"),
    )
    .returning(T.c.reports_today)
)


class Conversations(Repository):
    """The `conversations` table."""

    __slots__ = ()

    async def get(self, key: str) -> Conversation | None:
        """The conversation with that key, or None."""
        row = (await self._session.execute(_GET, {"key": key})).one_or_none()
        return None if row is None else self._record(row)

    async def for_step(self, key: str) -> tuple[Conversation | None, bool]:
        """The conversation with that key (or None), and whether the child may have a case open: False
        only when the row says they have none (with no row, their cases must be asked for)."""
        row = (await self._session.execute(_GET_FOR_STEP, {"key": key})).one_or_none()
        if row is None:
            return None, True
        values = dict(row._mapping)
        open_case = bool(values.pop("has_open_case"))
        return self._conversation(values), open_case

    async def save(
        self,
        key: str,
        channel: str,
        state: dict[str, Any],
        address: dict[str, Any] | Keep | None = KEEP,
        expected_version: int | None = None,
    ) -> int:
        """Insert (expected_version None) or update a version-checked row; return the new version."""
        now = self._now()
        values: dict[str, Any] = {
            "channel": channel, "state": self._seal(state, T.name, "state", key), "updated_at": now,
        }
        if address is not KEEP:
            values["address"] = None if address is None else self._seal(address, T.name, "address", key)
        if expected_version is None:
            values.setdefault("address", None)  # NULL, as when the column was left out of the INSERT
            values |= {"key": key, "version": 1, "created_at": now, "reports_today": 0, "reports_day": ""}
            if await self._insert_new(T, values, ["key"], T.c.key) is None:
                raise ConcurrentUpdate("conversation already exists")
            return 1
        new_version = expected_version + 1
        statement = _UPDATE if address is KEEP else _UPDATE_WITH_ADDRESS
        values |= {"b_key": key, "expected_version": expected_version, "version": new_version}
        if await self._affected(statement, values) != 1:
            raise ConcurrentUpdate("conversation changed or vanished since it was read")
        return new_version

    async def count_report(self, key: str, day: str) -> int:
        """Count one more report on `day` (the count restarts on a new day); return today's count."""
        count = (await self._session.execute(_COUNT_REPORT, {"b_key": key, "day": day})).scalar_one_or_none()
        if count is None:
            raise NotFound("no such conversation")
        return int(count)

    async def delete(self, key: str) -> bool:
        """Forget the conversation; True if it existed."""
        return await self._affected(delete(T).where(T.c.key == key)) > 0

    async def stale(self, before: datetime, limit: int, after: tuple[datetime, str] | None = None
                    ) -> list[Conversation]:
        """Conversations untouched since `before`, oldest first (abandoned drafts); page on with
        `after` = (updated_at, key) of the last one seen."""
        statement = select(T).where(T.c.updated_at < before)
        if after is not None:
            statement = statement.where(tuple_(T.c.updated_at, T.c.key) > tuple_(*after))
        statement = statement.order_by(T.c.updated_at, T.c.key).limit(limit)
        found = []
        for row in await self._session.execute(statement):
            try:
                found.append(self._record(row))
            except Misplaced:  # one tampered row must not stop the sweep
                refused(T.name, "state")
        return found

    async def all_keys_count(self) -> int:
        """How many conversations exist."""
        return int((await self._session.execute(select(func.count()).select_from(T))).scalar_one())

    def _record(self, row: Row[Any]) -> Conversation:
        """A state that does not open raises Misplaced: the update that needs it is retried, then parked,
        and nothing is overwritten. An address that does not open reads as None: the child's next
        message brings it again (and nothing is sent to them meanwhile)."""
        return self._conversation(dict(row._mapping))

    def _conversation(self, values: dict[str, Any]) -> Conversation:
        key = values["key"]
        values["state"] = self._unseal(values["state"], T.name, "state", key)
        values["address"] = self._unseal_or(values["address"], T.name, "address", key, None)
        return Conversation(**values)
