"""The `heartbeats` table: which processes are alive, and the release of leases held by others."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, delete, select, update

from storage.models import InboxRow, OutboxRow, table
from storage.repositories.base import Repository
from storage.repositories.leases import H, alive_since
from storage.values import InboxStatus, OutboxStatus

_RELEASED = {"claimed_by": None, "claimed_until": None}
_BEAT: dict[str, Any] = {}  # by dialect
GONE = datetime(2000, 1, 1, tzinfo=timezone.utc)  # the beat of a process that stopped: long stale


class Heartbeats(Repository):
    """One row per running process: `beat` about once a second; `gone` when it stops."""

    __slots__ = ()

    async def beat(self, owner: str) -> None:
        """`owner` is alive now (the row is made on its first beat)."""
        statement = _BEAT.get(self._ctx.dialect)
        if statement is None:
            insert = self._insert(H).values(owner=bindparam("owner"), beat_at=bindparam("now", type_=H.c.beat_at.type))
            statement = _BEAT[self._ctx.dialect] = insert.on_conflict_do_update(
                index_elements=["owner"], set_={"beat_at": insert.excluded.beat_at})
        await self._session.execute(statement, {"owner": owner, "now": self._now()})

    async def gone(self, owner: str) -> None:
        """`owner` stopped: what it still holds is free for the others at once."""
        await self._session.execute(update(H).where(H.c.owner == owner).values(beat_at=GONE))

    async def alive(self) -> list[str]:
        """The owners that beat within the last few seconds."""
        statement = select(H.c.owner).where(H.c.beat_at >= alive_since(self._now())).order_by(H.c.owner)
        return list((await self._session.execute(statement)).scalars())

    async def release_others(self, owner: str) -> int:
        """Release every lease not held by `owner` (SQLite, one process by design: at start, whatever
        another holder held was left by a process that is gone); return how many."""
        released = 0
        for rows, pending in ((table(OutboxRow), OutboxStatus.PENDING.value), (table(InboxRow), InboxStatus.PENDING.value)):
            statement = update(rows).where(rows.c.status == pending, rows.c.claimed_by.is_not(None),
                                           rows.c.claimed_by != owner)
            released += await self._affected(statement.values(**_RELEASED))
        return released

    async def take_turn(self, job: str, every: timedelta) -> bool:
        """A periodic job's turn, taken by one process per `every` across all of them: True for the
        first caller since the job last ran that long ago (its row: owner "turn:<job>", beat_at when
        it last ran); False for any other, which leaves the job alone."""
        name = f"turn:{job}"
        await self._insert_new(H, {"owner": name, "beat_at": GONE}, ["owner"], H.c.owner)
        now = self._now()
        statement = update(H).where(H.c.owner == name, H.c.beat_at <= now - every).values(beat_at=now)
        return await self._affected(statement) == 1

    async def forget(self, before: datetime) -> int:
        """Delete the rows of processes silent since before `before` (their leases ran out long ago)."""
        return await self._affected(delete(H).where(H.c.beat_at < before))
