"""The `topic_openings` table: a case's forum topic between "asked Telegram for it" and "the case holds it"."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, select, update

from storage.fast_path import prepared

from storage.models import HeartbeatRow, TopicOpeningRow, table
from storage.repositories.base import Repository
from storage.repositories.leases import alive_since
from storage.values import Target

T = table(TopicOpeningRow)
H = table(HeartbeatRow)
# Every topic opened runs these (prepared: built once).
_OPENED = prepared(update(T).where(T.c.id == bindparam("opening_id")).values(thread_id=bindparam("thread_id")))
_ATTACHED = prepared(delete(T).where(T.c.case_id == bindparam("case_id"), T.c.target == bindparam("target")))


@dataclass(frozen=True, slots=True)
class TopicOpening:
    id: int
    case_id: int
    target: Target
    chat: int
    thread_id: int | None  # None: Telegram was asked, its answer not (yet) recorded
    created_at: datetime
    owner: str | None  # the process that asked


class TopicOpenings(Repository):
    __slots__ = ()

    async def add(self, case_id: int, target: Target, chat: int, owner: str | None = None) -> int | None:
        """Record that a topic is about to be created for the case in `chat`: the row's id, or None if the
        case already has an opening in that chat (`current`)."""
        values = {"case_id": case_id, "target": str(target), "chat": chat, "created_at": self._now(), "owner": owner}
        found = await self._insert_new(T, values, ("case_id", "target"), T.c.id)
        return None if found is None else int(found)

    async def current(self, case_id: int, target: Target) -> TopicOpening | None:
        """The case's opening in a staff chat, if any."""
        row = (await self._session.execute(
            select(T).where(T.c.case_id == case_id, T.c.target == str(target)))).first()
        return None if row is None else _opening(row)

    async def restart(self, opening_id: int, owner: str | None = None) -> None:
        """Take over an opening whose request never got an answer, or whose process died: asked again, from now."""
        await self._session.execute(update(T).where(T.c.id == opening_id).values(
            thread_id=None, created_at=self._now(), owner=owner))

    async def holder_dead(self, opening: TopicOpening) -> bool:
        """Whether the process that asked for the topic stopped beating (as leases: storage/repositories/leases.py):
        its request will never be answered here, so the opening is free at once."""
        if opening.owner is None:
            return False
        stale = select(H.c.owner).where(H.c.owner == opening.owner, H.c.beat_at < alive_since(self._now()))
        return (await self._session.execute(stale)).first() is not None

    async def unanswered(self, opening_id: int, since: datetime) -> None:
        """The request got no answer (the connection failed): dated `since`, so that the next try takes
        it over at once, and the sweep still sees it."""
        await self._session.execute(update(T).where(T.c.id == opening_id).values(created_at=since))

    async def opened(self, opening_id: int, thread_id: int) -> None:
        """Telegram created the topic: its thread id."""
        await self._session.execute(_OPENED, {"opening_id": opening_id, "thread_id": thread_id})

    async def attached(self, case_id: int, target: Target) -> None:
        """The case holds its topic now: its openings are done."""
        await self._affected(_ATTACHED, {"case_id": case_id, "target": str(target)})

    async def left_before(self, before: datetime) -> list[TopicOpening]:
        """Openings older than `before` (so not in progress): what a crash or a lost answer left."""
        rows = await self._session.execute(select(T).where(T.c.created_at < before).order_by(T.c.id))
        return [_opening(row) for row in rows]

    async def drop(self, opening_id: int) -> None:
        await self._affected(delete(T).where(T.c.id == opening_id))


def _opening(row: Row[Any]) -> TopicOpening:
    return TopicOpening(row.id, row.case_id, Target(row.target), int(row.chat),
                        None if row.thread_id is None else int(row.thread_id), row.created_at, row.owner)
