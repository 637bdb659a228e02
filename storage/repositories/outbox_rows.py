"""The outbox's rows read back (a sealed payload opened for where it goes), and its upkeep: erasure,
counts for health and metrics, the sweeps, and the views tests and admins use. The delivery path
itself is in outbox.py."""
from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, func, literal_column, or_, select, update

from storage.models import ConversationRow, OutboxRow, table
from storage.records import OutboxItem
from storage.repositories.base import Repository
from storage.values import Kind, OutboxStatus, Target

T = table(OutboxRow)
C = table(ConversationRow)
PENDING = OutboxStatus.PENDING
# Written out, not bound, where a lane is asked for waiting items: only then can SQLite and PostgreSQL
# use the index over pending items (ix_outbox_pending_lane), whose condition is this very text.
WAITING = literal_column("'pending'")
RELEASED = {"claimed_until": None, "claimed_by": None}
WIPED = b""  # the payload of an item of a child who erased their data: reads as {}


class OutboxRows(Repository):
    """Reading items back, and the outbox's upkeep (the delivery path is `Outbox`, outbox.py)."""

    __slots__ = ()

    async def forget_child(self, conversation_key: str, case_ids: Collection[int] = ()) -> int:
        """After /forget: messages to the child and theirs relayed to staff are cancelled if pending and
        wiped whatever their status (nothing of theirs waits or stays readable); return how many were cancelled."""
        theirs = and_(T.c.target == Target.CHILD, T.c.conversation_key == conversation_key)
        if case_ids:
            theirs = or_(theirs, and_(T.c.case_id.in_(list(case_ids)), T.c.kind == Kind.RELAY.value))
        cancel = update(T).where(theirs, T.c.status == PENDING).values(status=OutboxStatus.CANCELLED.value, **RELEASED)
        cancelled = await self._affected(cancel)
        await self._affected(update(T).where(theirs).values(payload=WIPED))
        return cancelled

    async def depth(self, target: str | None = None) -> int:
        """How many items are pending (for `target` only, if given)."""
        where = [T.c.status == PENDING] + ([T.c.target == str(target)] if target is not None else [])
        return int((await self._session.execute(select(func.count()).select_from(T).where(*where))).scalar_one())

    async def oldest_pending_age(self, now: datetime) -> float | None:
        """Seconds since the oldest pending item was queued, or None when nothing is pending."""
        oldest = (await self._session.execute(select(func.min(T.c.created_at)).where(T.c.status == PENDING))).scalar()
        return None if oldest is None else (now - oldest).total_seconds()

    async def pending_cards(self, target: str = Target.OPERATOR) -> list[int]:
        """Case ids whose case card to `target` is still pending."""
        statement = select(T.c.case_id).distinct().where(
            T.c.status == PENDING, T.c.kind == Kind.CASE_CARD.value, T.c.target == target, T.c.case_id.is_not(None),
        ).order_by(T.c.case_id)
        return [int(case_id) for case_id in (await self._session.execute(statement)).scalars()]

    async def stuck(self, now: datetime) -> int:
        """Release pending items whose lease expired (their worker died); return how many."""
        statement = update(T).where(T.c.status == PENDING, T.c.claimed_until < now).values(**RELEASED)
        return await self._affected(statement)

    async def purge_sent(self, before: datetime) -> int:
        """Delete finished items (sent, failed, cancelled) older than `before`; return how many."""
        finished = T.c.status.in_([OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.CANCELLED])
        statement = delete(T).where(finished, func.coalesce(T.c.sent_at, T.c.created_at) < before)
        return await self._affected(statement)

    async def get(self, item_id: int) -> OutboxItem | None:
        """One item, or None."""
        found = await self._many(T.c.id == item_id)
        return found[0] if found else None

    async def items(self, case_id: int | None = None, status: str | None = None) -> list[OutboxItem]:
        """Items in id order, optionally of one case and/or one status (for tests and admin views)."""
        where = [T.c.case_id == case_id] if case_id is not None else []
        where += [T.c.status == status] if status is not None else []
        return await self._many(*where)

    async def _many(self, *where: ColumnElement[bool]) -> list[OutboxItem]:
        statement = select(T).where(*where).order_by(T.c.id)
        return [self._record(row) for row in await self._session.execute(statement)]

    def _record(self, row: Row[Any]) -> OutboxItem:
        """A payload that does not open raises Misplaced; a child's address that does not open reads as
        None (the child's next message brings it again; the item fails as "recipient gone")."""
        values = dict(row._mapping)
        payload = values["payload"]
        values["payload"] = {} if payload == WIPED else self._unseal(payload, T.name, "payload", destination(values))
        values["result"] = None if values["result"] is None else json.loads(values["result"])
        values["target"] = Target(values["target"])
        values["status"] = OutboxStatus(values["status"])
        values["kind"] = Kind(values["kind"])
        address = values.get("address")  # only `ready` reads it
        values["address"] = self._unseal_or(address, C.name, "address", values["conversation_key"], None)
        return OutboxItem(**values)


def destination(values: dict[str, Any]) -> str:
    """The key a payload is sealed to: where it goes (the row's id comes only with the INSERT). A payload
    moved to another child or case, or given another kind, does not open."""
    return "|".join(str(values[name]) for name in ("target", "channel", "lane", "conversation_key", "case_id", "kind"))
