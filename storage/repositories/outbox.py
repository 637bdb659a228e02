"""The outbox: every message that leaves, claimed by delivery workers one lane item at a time."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, func, or_, select, update

from storage.models import OutboxRow, table
from storage.records import OutboxItem
from storage.repositories.base import Repository, clip
from storage.values import OutboxStatus, Priority, Target

T = table(OutboxRow)
PENDING = OutboxStatus.PENDING
CASE_CARD = "case_card"
RELEASED = {"claimed_until": None, "claimed_by": None}


def _free(now: datetime) -> ColumnElement[bool]:
    """Nobody holds the item, or the holder's lease ran out (the worker died)."""
    return or_(T.c.claimed_until.is_(None), T.c.claimed_until < now)


class Outbox(Repository):
    """The `outbox` table; `payload` is sealed, `result` (ids of bot messages) is plain JSON."""

    __slots__ = ()

    async def add(
        self,
        target: str,
        channel: str,
        lane: str,
        kind: str,
        payload: dict[str, Any],
        priority: int = Priority.NORMAL,
        conversation_key: str | None = None,
        case_id: int | None = None,
    ) -> int:
        """Queue a message; return its id."""
        now = self._now()
        values = {
            "target": str(Target(target)), "channel": channel, "lane": lane, "kind": kind,
            "payload": self._seal(payload), "priority": int(priority), "status": PENDING.value,
            "attempts": 0, "next_attempt_at": now, "created_at": now,
            "conversation_key": conversation_key, "case_id": case_id,
        }  # fmt: skip
        statement = T.insert().values(**values).returning(T.c.id)
        return int((await self._session.execute(statement)).scalar_one())

    async def claim_ready(self, now: datetime, owner: str, limit: int, lease_seconds: float) -> list[OutboxItem]:
        """Lease up to `limit` due items, only the first pending item of each lane, by priority then id."""
        # Commit right after: other workers see the lease only then (PostgreSQL holds the row locks until).
        earlier = T.alias("earlier")
        lane_busy = (
            select(earlier.c.id)
            .where(earlier.c.lane == T.c.lane, earlier.c.status == PENDING, earlier.c.id < T.c.id)
            .exists()
        )
        candidates = (
            select(T.c.id)
            .where(T.c.status == PENDING, T.c.next_attempt_at <= now, _free(now), ~lane_busy)
            .order_by(T.c.priority, T.c.id)
            .limit(limit)
        )
        until = now + timedelta(seconds=lease_seconds)
        claimed = []
        for item_id in (await self._session.execute(candidates)).scalars().all():
            # Re-checked in the UPDATE itself: of two racing workers exactly one sees rowcount 1.
            claim = (
                update(T)
                .where(T.c.id == item_id, T.c.status == PENDING, _free(now))
                .values(claimed_until=until, claimed_by=owner)
            )
            if await self._affected(claim) == 1:
                claimed.append(item_id)
        if not claimed:
            return []
        return await self._many(T.c.id.in_(claimed), order=(T.c.priority, T.c.id))

    async def mark_sent(self, item_id: int, result: dict[str, Any] | None) -> None:
        """Record delivery and what the platform answered (ids of the bot's messages)."""
        encoded = None if result is None else json.dumps(result, separators=(",", ":"))
        await self._set(item_id, status=OutboxStatus.SENT.value, sent_at=self._now(), result=encoded, **RELEASED)

    async def retry_later(self, item_id: int, at: datetime, error: str) -> None:
        """Count a failed attempt, release the claim and try again at `at`."""
        await self._set(item_id, attempts=T.c.attempts + 1, next_attempt_at=at, error=clip(error), **RELEASED)

    async def mark_failed(self, item_id: int, error: str) -> None:
        """Give up on the item (it stops blocking its lane)."""
        await self._set(
            item_id, status=OutboxStatus.FAILED.value, attempts=T.c.attempts + 1, error=clip(error), **RELEASED
        )

    async def release(self, item_id: int) -> None:
        """Give the claim back without counting an attempt (e.g. on shutdown)."""
        await self._set(item_id, **RELEASED)

    async def cancel_for_conversation(self, conversation_key: str) -> int:
        """Cancel pending messages to a child who erased their data, wiping their payloads; return how many."""
        statement = (
            update(T)
            .where(T.c.conversation_key == conversation_key, T.c.target == Target.CHILD, T.c.status == PENDING)
            .values(status=OutboxStatus.CANCELLED.value, payload=self._seal({}), **RELEASED)
        )
        return await self._affected(statement)

    async def depth(self) -> int:
        """How many items are pending."""
        statement = select(func.count()).select_from(T).where(T.c.status == PENDING)
        return int((await self._session.execute(statement)).scalar_one())

    async def oldest_pending_age(self, now: datetime) -> float | None:
        """Seconds since the oldest pending item was queued, or None when nothing is pending."""
        oldest = (await self._session.execute(select(func.min(T.c.created_at)).where(T.c.status == PENDING))).scalar()
        return None if oldest is None else (now - oldest).total_seconds()

    async def pending_cards(self, target: str = Target.OPERATOR) -> list[int]:
        """Case ids whose case card to `target` is still pending."""
        statement = (
            select(T.c.case_id)
            .distinct()
            .where(T.c.status == PENDING, T.c.kind == CASE_CARD, T.c.target == target, T.c.case_id.is_not(None))
            .order_by(T.c.case_id)
        )
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
        where = []
        if case_id is not None:
            where.append(T.c.case_id == case_id)
        if status is not None:
            where.append(T.c.status == status)
        return await self._many(*where)

    async def _set(self, item_id: int, **values: Any) -> None:
        await self._session.execute(update(T).where(T.c.id == item_id).values(**values))

    async def _many(self, *where: ColumnElement[bool], order: tuple[Any, ...] = (T.c.id,)) -> list[OutboxItem]:
        statement = select(T).where(*where).order_by(*order)
        return [self._record(row) for row in await self._session.execute(statement)]

    def _record(self, row: Row[Any]) -> OutboxItem:
        values = dict(row._mapping)
        values["payload"] = self._unseal(values["payload"])
        values["result"] = None if values["result"] is None else json.loads(values["result"])
        values["target"] = Target(values["target"])
        values["status"] = OutboxStatus(values["status"])
        return OutboxItem(**values)
