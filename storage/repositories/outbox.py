"""The outbox: every message that leaves, claimed by delivery workers one lane item at a time."""
from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, Integer, bindparam, case, select, update

from storage.errors import Misplaced
from storage.fast_path import prepared
from storage.records import MarkedSent, OutboxItem
from storage.repositories.base import clip, refused
from storage.repositories.leases import alive_since, free_for
from storage.repositories.outbox_rows import C, PENDING, RELEASED, WAITING, WIPED, OutboxRows, T, destination
from storage.values import Kind, OutboxStatus, Priority, Target

# The delivery path's statements, built once: SQLAlchemy then reuses their cache key and compiled form
# (building and hashing a statement costs more CPU than SQLite takes to run it).
_NOW = bindparam("now", type_=T.c.next_attempt_at.type)
_OWNER = bindparam("owner", type_=T.c.claimed_by.type)
_UNTIL = bindparam("until", type_=T.c.claimed_until.type)
_ITEM = T.c.id == bindparam("item_id")
_EARLIER = T.alias("earlier")
# The item is free for the worker `owner`: nobody holds it, the holder's lease ran out or its heartbeat
# stopped (leases.py), or `owner` holds it itself (queued leased to it, `add_leased`, not started yet).
_FREE = free_for(T, _NOW, _OWNER)
_READY = (
    # A child's sealed address comes along, so that the sender need not read the conversation.
    select(T, C.c.address)
    .select_from(T.outerjoin(C, (C.c.key == T.c.conversation_key) & (T.c.target == Target.CHILD.value)))
    .where(
        T.c.status == PENDING,
        T.c.next_attempt_at <= _NOW,
        _FREE,
        T.c.id.not_in(bindparam("busy", expanding=True)),
        ~select(_EARLIER.c.id)
        .where(_EARLIER.c.lane == T.c.lane, _EARLIER.c.status == WAITING, _EARLIER.c.id < T.c.id)
        .exists(),
    )
    .order_by(T.c.priority, T.c.id)
    .limit(bindparam("limit", type_=Integer))
    # PostgreSQL: rows another worker is claiming right now are passed over, not waited for (so two
    # claims never wait on each other, nor deadlock); SQLite ignores this (it has one writer at a time).
    .with_for_update(of=T, skip_locked=True)
)
_CLAIM = (
    update(T)
    # Re-checked in the UPDATE itself: of two racing workers exactly one gets the item back.
    .where(T.c.id.in_(bindparam("ids", expanding=True)), T.c.status == PENDING, _FREE)
    .values(claimed_until=_UNTIL, claimed_by=_OWNER)
    .returning(T.c.id)
)

# Outcomes touch only a pending item: one cancelled meanwhile (the child erased their data) stays so.
_STILL_PENDING = update(T).where(_ITEM, T.c.status == PENDING)
# Whether another item waits in the sent item's lane comes back with the mark: one statement for the
# two things every sent item needs. The lane is bound, not correlated (SQLite's RETURNING names columns
# without their table), and the row itself is left out (the subquery may still see it pending).
_OTHER = T.alias("other")
_LANE_WAITS = (
    select(_OTHER.c.id)
    # ("id > 0", always true, makes SQLite take the lane index, as in _PENDING_IN_LANE below)
    .where(_OTHER.c.lane == bindparam("of_lane"), _OTHER.c.status == WAITING, _OTHER.c.id > 0,
           _OTHER.c.id != bindparam("item_id"))
    .exists().label("lane_waits")
)
_MARK_SENT = prepared(_STILL_PENDING.values(
    status=OutboxStatus.SENT.value, sent_at=_NOW, result=bindparam("outcome"), **RELEASED
).returning(_LANE_WAITS))
# A message to a child is not kept once sent: what it said goes with the mark (README, Security).
_MARK_SENT_WIPED = prepared(_STILL_PENDING.values(
    status=OutboxStatus.SENT.value, sent_at=_NOW, result=bindparam("outcome"), payload=WIPED, **RELEASED
).returning(_LANE_WAITS))
_RETRY_LATER = prepared(_STILL_PENDING.values(
    attempts=T.c.attempts + 1, next_attempt_at=bindparam("at", type_=T.c.next_attempt_at.type),
    error=bindparam("reason"), **RELEASED,
))
_MARK_FAILED = prepared(_STILL_PENDING.values(
    status=OutboxStatus.FAILED.value, attempts=T.c.attempts + 1, error=bindparam("reason"), **RELEASED
))
# The item behind a sent one in its lane, leased to the same worker in the transaction that records the
# send: the lane goes on without a round (a round reads every ready item; this reads one).
_NEXT = T.alias("behind")
_CLAIM_NEXT_IN_LANE = prepared(
    update(T)
    .where(
        T.c.id == select(_NEXT.c.id)
        .where(_NEXT.c.lane == bindparam("of_lane"), _NEXT.c.status == WAITING, _NEXT.c.id > 0)
        .order_by(_NEXT.c.id).limit(1).scalar_subquery(),
        T.c.status == PENDING, T.c.next_attempt_at <= _NOW, _FREE,
    )
    .values(claimed_until=_UNTIL, claimed_by=_OWNER)
    .returning(*T.c)
)
_RELEASE = prepared(update(T).where(_ITEM).values(**RELEASED))
_ADD = prepared(T.insert().returning(T.c.id))
# Queued already leased to a worker, unless an earlier item waits in its lane (then the lane's order
# decides, in a delivery round): one statement, so that a message costs no claim of its own.
_PENDING_IN_LANE = select(T.c.id).where(
    # "id > 0" (always true) makes SQLite prefer the lane index to the one on status and due time.
    T.c.lane == bindparam("lane_of_item"), T.c.status == WAITING, T.c.id > 0
)
_LANE_IS_FREE = ~_PENDING_IN_LANE.exists()
_ADD_LEASED = prepared(
    T.insert()
    .values(claimed_by=case((_LANE_IS_FREE, _OWNER)), claimed_until=case((_LANE_IS_FREE, _UNTIL)))
    .returning(T.c.id, T.c.claimed_until)
)


class Outbox(OutboxRows):
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
        values = self._new(target, channel, lane, kind, payload, priority, conversation_key, case_id)
        return int((await self._session.execute(_ADD, values)).scalar_one())

    async def add_leased(
        self,
        owner: str,
        lease_seconds: float,
        target: str,
        channel: str,
        lane: str,
        kind: str,
        payload: dict[str, Any],
        priority: int = Priority.NORMAL,
        conversation_key: str | None = None,
        case_id: int | None = None,
        address: dict[str, Any] | None = None,
    ) -> OutboxItem | None:
        """Queue a message leased to the worker `owner`, so that it can send it right after the commit
        with no claim of its own; return the item (with `address`, the child's, when given). None if
        an earlier item waits in the lane: the message is queued unleased, for a round to claim in turn."""
        values = self._new(target, channel, lane, kind, payload, priority, conversation_key, case_id)
        until = values["created_at"] + timedelta(seconds=lease_seconds)
        params = {**values, "owner": owner, "until": until, "lane_of_item": lane}
        item_id, leased_until = (await self._session.execute(_ADD_LEASED, params)).one()
        if leased_until is None:
            return None
        return OutboxItem(
            id=item_id, target=Target(target), channel=channel, lane=lane, conversation_key=conversation_key,
            case_id=case_id, kind=Kind(kind), payload=payload, priority=int(priority), status=PENDING, attempts=0,
            next_attempt_at=values["next_attempt_at"], created_at=values["created_at"], sent_at=None, result=None,
            error=None, claimed_until=until, claimed_by=owner, address=address,
        )

    def _new(self, target: str, channel: str, lane: str, kind: str, payload: dict[str, Any], priority: int,
             conversation_key: str | None, case_id: int | None) -> dict[str, Any]:
        """The columns of a new item, due now."""
        now = self._now()
        values = {
            "target": str(Target(target)), "channel": channel, "lane": lane, "kind": str(Kind(kind)),
            "priority": int(priority), "status": PENDING.value, "attempts": 0, "next_attempt_at": now,
            "created_at": now, "conversation_key": conversation_key, "case_id": case_id,
        }  # fmt: skip
        values["payload"] = self._seal(payload, T.name, "payload", destination(values))
        return values

    async def ready(self, now: datetime, limit: int, owner: str | None = None,
                    busy: Collection[int] = ()) -> list[OutboxItem]:
        """Up to `limit` due items free for `owner` (unclaimed, or leased to `owner` itself) and not in
        `busy` (its sends in flight), only the first pending item of each lane, by priority then id;
        each child's item with the child's address. Nothing is claimed: see `claim`."""
        params = {"now": now, "limit": limit, "owner": owner, "busy": list(busy), "alive_since": alive_since(now)}
        found, misplaced = [], []
        for row in await self._session.execute(_READY, params):
            try:
                found.append(self._record(row))
            except Misplaced:  # written for another destination, or altered: never sent, and its lane moves on
                misplaced.append(row.id)
        await self._fail_misplaced(misplaced)
        return found

    async def claim_next_in_lane(self, lane: str, now: datetime, owner: str, lease_seconds: float) -> OutboxItem | None:
        """Lease to `owner` the first pending item of `lane` if it is due and free for it; the item, or
        None. Its `address` is not read (the caller has the child's, from the item before it)."""
        params = {"of_lane": lane, "now": now, "owner": owner, "until": now + timedelta(seconds=lease_seconds),
                  "alive_since": alive_since(now)}
        row = (await self._session.execute(_CLAIM_NEXT_IN_LANE, params)).one_or_none()
        if row is None:
            return None
        try:
            return self._record(row)
        except Misplaced:
            await self._fail_misplaced([row.id])
            return None

    async def _fail_misplaced(self, ids: list[int]) -> None:
        if ids:
            refused(T.name, "payload")
            failed = update(T).where(T.c.id.in_(ids)).values(status=OutboxStatus.FAILED.value, error="Misplaced")
            await self._session.execute(failed)

    async def claim(self, ids: Iterable[int], now: datetime, owner: str, lease_seconds: float) -> set[int]:
        """Lease those of the items that are still free for `owner`; return their ids (the ones it won)."""
        # Commit right after: other workers see the lease only then (PostgreSQL holds the row locks until).
        ids = list(ids)
        if not ids:
            return set()
        until = now + timedelta(seconds=lease_seconds)
        params = {"ids": ids, "now": now, "until": until, "owner": owner, "alive_since": alive_since(now)}
        return set((await self._session.execute(_CLAIM, params)).scalars().all())

    async def claim_ready(self, now: datetime, owner: str, limit: int, lease_seconds: float) -> list[OutboxItem]:
        """Lease up to `limit` due items, only the first pending item of each lane, by priority then id."""
        items = await self.ready(now, limit, owner)
        won = await self.claim([item.id for item in items], now, owner, lease_seconds)
        until = now + timedelta(seconds=lease_seconds)
        return [replace(item, claimed_until=until, claimed_by=owner) for item in items if item.id in won]

    async def mark_sent(self, item_id: int, lane: str, result: dict[str, Any] | None,
                        wipe: bool = False) -> MarkedSent | None:
        """Record delivery and what the platform answered (ids of the bot's messages), with `wipe` forgetting
        its payload, and tell whether another item waits in its `lane`; None (and nothing written) if the
        item is no longer pending."""
        encoded = None if result is None else json.dumps(result, separators=(",", ":"))
        statement = _MARK_SENT_WIPED if wipe else _MARK_SENT
        params = {"item_id": item_id, "of_lane": lane, "now": self._now(), "outcome": encoded}
        lane_waits = (await self._session.execute(statement, params)).scalar_one_or_none()
        return None if lane_waits is None else MarkedSent(lane_waits=bool(lane_waits))

    async def retry_later(self, item_id: int, at: datetime, error: str) -> bool:
        """Count a failed attempt, release the claim and try again at `at`; False if no longer pending."""
        return await self._changed(_RETRY_LATER, {"item_id": item_id, "at": at, "reason": clip(error)})

    async def mark_failed(self, item_id: int, error: str) -> bool:
        """Give up on the item (it stops blocking its lane); False if no longer pending."""
        return await self._changed(_MARK_FAILED, {"item_id": item_id, "reason": clip(error)})

    async def release(self, item_id: int) -> None:
        """Give the claim back without counting an attempt (e.g. on shutdown)."""
        await self._session.execute(_RELEASE, {"item_id": item_id})

    async def _changed(self, statement: Executable, params: dict[str, Any]) -> bool:
        return await self._affected(statement, params) == 1
