"""The inbox: raw platform updates, deduplicated, kept sealed until processed."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, Integer, Row, bindparam, delete, func, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.errors import Misplaced
from storage.fast_path import prepared
from storage.models import InboxRow, table
from storage.records import InboxItem
from storage.repositories.base import Repository, clip, refused
from storage.repositories.leases import alive_since, free_for
from storage.values import InboxStatus

T = table(InboxRow)

# Every update is stored, fetched and marked done: those statements are built once, with bind parameters for
# the values, so SQLAlchemy neither rebuilds nor re-hashes them on each call (bench/README.md, findings, item 3).
_NOW = bindparam("now", type_=T.c.received_at.type)
_OWNER = bindparam("owner", type_=T.c.claimed_by.type)
_UNTIL = bindparam("until", type_=T.c.claimed_until.type)
_FREE = free_for(T, _NOW, _OWNER)
# Claimed in two statements: the oldest pending rows free for `owner`, locked (PostgreSQL passes over
# rows another process is claiming right now: SKIP LOCKED; SQLite has one writer at a time), then
# leased to it. (In one statement, `id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`, PostgreSQL may
# run the subquery more than once and lease more than n rows.)
_CLAIMABLE = (
    select(T.c.id).where(T.c.status == InboxStatus.PENDING.value, _FREE).order_by(T.c.id)
    .limit(bindparam("limit", type_=Integer)).with_for_update(skip_locked=True)
)
_CLAIM = (
    update(T).where(T.c.id.in_(bindparam("ids", expanding=True)), T.c.status == InboxStatus.PENDING.value, _FREE)
    .values(claimed_by=_OWNER, claimed_until=_UNTIL).returning(*T.c)
)
_MINE = (T.c.id == bindparam("item_id")) & (T.c.status == InboxStatus.PENDING.value) & (T.c.claimed_by == _OWNER)
_EARLIER = T.alias("earlier")
_FIRST_IN_LANE = ~select(_EARLIER.c.id).where(
    _EARLIER.c.lane == T.c.lane, _EARLIER.c.status == InboxStatus.PENDING.value, _EARLIER.c.id < T.c.id).exists()
# Taken in hand: still this process's, and first of its lane (the row stays locked until the commit).
_HOLD = update(T).where(_MINE, _FIRST_IN_LANE).values(claimed_until=_UNTIL)
_LET_GO = update(T).where(T.c.lane == bindparam("lane_of_item"), T.c.status == InboxStatus.PENDING.value,
                          T.c.claimed_by == _OWNER).values(claimed_by=None, claimed_until=None)
_WAITING_IN_LANE = prepared(select(T.c.id).where(T.c.status == InboxStatus.PENDING, T.c.lane == bindparam("lane")).limit(1))
_DONE_VALUES = ("channel", "external_id", "lane", "payload", "status", "attempts", "received_at", "done_at")
# Updates recorded done by one statement, padded up to the next of these sizes: a few statements built
# once (not one per number of updates), and a lone update not padded to twenty (on SQLite the
# padding costs more than the statement).
_DONE_ROWS = (1, 4, 20)
DONE_AT_ONCE = _DONE_ROWS[-1]
_ADD_DONE: dict[str, dict[int, Executable]] = {}  # by dialect, then rows: see Inbox.add_done
_MARK_DONE = prepared(
    update(T)
    .where(_MINE)  # only by its claimant: a row another process took over is not marked twice
    .values(status=InboxStatus.DONE.value, payload=None, done_at=bindparam("done_at"), error=None,
            claimed_by=None, claimed_until=None)
)
# What a parked row keeps once its content is wiped: counts and times, no content, no lane (a keyed hash of the chat).
_WIPED = {"payload": None, "lane": "-"}


class Inbox(Repository):
    """The `inbox` table; `payload` is sealed and wiped once the update is processed."""

    __slots__ = ()

    async def add(self, channel: str, external_id: str, lane: str, payload: dict[str, Any]) -> int | None:
        """Store an update; None if (channel, external_id) was seen before (a platform redelivery)."""
        values = {
            "channel": channel, "external_id": external_id, "lane": lane,
            "payload": self._seal(payload, T.name, "payload", _row(channel, external_id)),
            "status": InboxStatus.PENDING.value, "attempts": 0, "received_at": self._now(), "done_at": None,
        }  # fmt: skip
        return await self._insert_new(T, values, ["channel", "external_id"], T.c.id)

    async def add_done(self, channel: str, updates: Sequence[tuple[str, str]]) -> int:
        """Record updates (external id, lane) handled in this very transaction (no payload is kept), up
        to `DONE_AT_ONCE` in one statement: this runs for every update. Returns how many were recorded:
        one seen before, or whose lane has an earlier update waiting (`waiting_in_lane` tells which), is
        not; if any was not, the caller rolls the transaction back and decides for each on its own."""
        statements = _ADD_DONE.get(self._ctx.dialect)
        if statements is None:
            statements = _ADD_DONE[self._ctx.dialect] = {rows: _add_done_statement(self._insert(T), rows)
                                                         for rows in _DONE_ROWS}
        recorded = 0
        for start in range(0, len(updates), DONE_AT_ONCE):
            chunk = updates[start:start + DONE_AT_ONCE]
            rows = next(rows for rows in _DONE_ROWS if rows >= len(chunk))
            values: dict[str, Any] = {
                "channel": channel, "payload": None, "status": InboxStatus.DONE.value, "attempts": 0, "now": self._now()}
            for index in range(rows):  # rows past the chunk's are NULL: the statement skips them
                values[f"external_id_{index}"], values[f"lane_{index}"] = chunk[index] if index < len(chunk) else (None, None)
            recorded += len((await self._session.execute(statements[rows], values)).all())
        return recorded

    async def waiting_in_lane(self, lane: str) -> bool:
        """True if an earlier update of this lane still waits (its successors must queue behind it)."""
        return (await self._session.execute(_WAITING_IN_LANE, {"lane": lane})).first() is not None

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[InboxItem]:
        """Lease to `owner` up to `limit` of the oldest pending updates free for it (unclaimed, its own,
        or held by a process whose lease ran out or whose heartbeat stopped); return them in arrival
        order. One whose payload was written for another row (or altered) is parked at once, not
        returned: its lane moves on."""
        now = self._now()
        params = {"now": now, "owner": owner, "until": now + timedelta(seconds=lease_seconds), "limit": limit,
                  "alive_since": alive_since(now)}
        params["ids"] = list((await self._session.execute(_CLAIMABLE, params)).scalars())
        if not params["ids"]:
            return []
        found, misplaced = [], []
        for row in sorted(await self._session.execute(_CLAIM, params), key=lambda row: row.id):
            try:
                found.append(self._record(row))
            except Misplaced:
                misplaced.append(row.id)
        if misplaced:
            refused(T.name, "payload")
            parked = update(T).where(T.c.id.in_(misplaced)).values(status=InboxStatus.PARKED.value, error="Misplaced")
            await self._session.execute(parked)
        return found

    async def pending(self, limit: int) -> list[InboxItem]:
        """The oldest pending updates, in arrival order, claimed or not (for tests and admin views)."""
        statement = select(T).where(T.c.status == InboxStatus.PENDING.value).order_by(T.c.id).limit(limit)
        return [self._record(row) for row in await self._session.execute(statement)]

    async def hold(self, item_id: int, owner: str, lease_seconds: float) -> bool:
        """Take a claimed update in hand for handling in this transaction: True if it is still
        `owner`'s and pending, and no earlier update of its lane waits (its row then stays locked
        until the commit, on PostgreSQL)."""
        until = self._now() + timedelta(seconds=lease_seconds)
        return await self._affected(_HOLD, {"item_id": item_id, "owner": owner, "until": until}) == 1

    async def let_go(self, lane: str, owner: str) -> int:
        """Release `owner`'s claims on a lane whose earlier update another process handles: that one
        takes them in turn. Return how many."""
        return await self._affected(_LET_GO, {"lane_of_item": lane, "owner": owner})

    async def get(self, item_id: int) -> InboxItem | None:
        """One update, or None."""
        row = (await self._session.execute(select(T).where(T.c.id == item_id))).one_or_none()
        return None if row is None else self._record(row)

    async def mark_done(self, item_id: int, owner: str) -> bool:
        """Processed: wipe the payload, keep the row for deduplication. Only by its claimant `owner`:
        False, and nothing written, if the update is no longer pending and `owner`'s."""
        params = {"item_id": item_id, "owner": owner, "done_at": self._now()}
        return await self._affected(_MARK_DONE, params) == 1

    async def fail(self, item_id: int, error: str, max_attempts: int, owner: str | None = None) -> bool:
        """Count a failed attempt (only if still `owner`'s, when given); park the update after
        `max_attempts`. True if it is now parked."""
        mine = T.c.id == item_id if owner is None else (T.c.id == item_id) & (T.c.claimed_by == owner)
        statement = (
            update(T)
            .where(mine, T.c.status == InboxStatus.PENDING.value)
            .values(attempts=T.c.attempts + 1, error=clip(error))
            .returning(T.c.attempts)
        )
        attempts = (await self._session.execute(statement)).scalar_one_or_none()
        if attempts is None or attempts < max_attempts:
            return False
        parked = {"status": InboxStatus.PARKED.value, "claimed_by": None, "claimed_until": None}
        await self._session.execute(update(T).where(T.c.id == item_id).values(**parked))
        return True

    async def last_external_id(self, channel: str) -> str | None:
        """The external id of the newest stored update of a channel (to resume polling)."""
        statement = select(T.c.external_id).where(T.c.channel == channel).order_by(T.c.id.desc()).limit(1)
        return (await self._session.execute(statement)).scalar_one_or_none()

    async def forget_done(self, before: datetime) -> int:
        """Delete processed rows finished before `before` (keep ≥48 h so redeliveries are still caught)."""
        statement = delete(T).where(T.c.status == InboxStatus.DONE, T.c.done_at < before)
        return await self._affected(statement)

    async def forget_lane(self, lane: str) -> int:
        """A child erased their data: wipe the content of their parked updates (the rows stay, counted,
        with no lane); return how many had content. Nothing of theirs waits pending then: /forget is
        handled only after every earlier update of its lane."""
        statement = update(T).where(T.c.lane == lane, T.c.status == InboxStatus.PARKED, T.c.payload.is_not(None))
        return await self._affected(statement.values(**_WIPED))

    async def wipe_parked(self, before: datetime) -> int:
        """Wipe the content of updates parked (received) before `before`: kept for counts, not for ever."""
        old = (T.c.status == InboxStatus.PARKED) & (T.c.received_at < before) & T.c.payload.is_not(None)
        statement = update(T).where(old)
        return await self._affected(statement.values(**_WIPED))

    async def depth(self) -> int:
        """How many updates wait to be processed."""
        statement = select(func.count()).select_from(T).where(T.c.status == InboxStatus.PENDING)
        return int((await self._session.execute(statement)).scalar_one())

    def _record(self, row: Row[Any]) -> InboxItem:
        values = dict(row._mapping)
        sealed_to = _row(values["channel"], values["external_id"])
        values["payload"] = self._unseal(values["payload"], T.name, "payload", sealed_to)
        values["status"] = InboxStatus(values["status"])
        return InboxItem(**values)


def _row(channel: str, external_id: str) -> str:
    """The key a payload is sealed to: the row's id comes only with the INSERT, and this pair is unique."""
    return f"{channel}:{external_id}"


def _add_done_statement(insert: postgresql.Insert | sqlite.Insert, rows: int) -> Executable:
    """INSERT … SELECT of `rows` rows, each only if given (not NULL) and its lane has nothing pending."""
    shared = {name: bindparam(name, type_=T.c[name].type) for name in ("channel", "payload", "status", "attempts")}
    now = bindparam("now", type_=T.c.received_at.type)
    selects = []
    for index in range(rows):
        external_id = bindparam(f"external_id_{index}", type_=T.c.external_id.type)
        lane = bindparam(f"lane_{index}", type_=T.c.lane.type)
        waiting = select(T.c.id).where(T.c.status == InboxStatus.PENDING.value, T.c.lane == lane).exists()
        selects.append(select(shared["channel"], external_id, lane, shared["payload"], shared["status"],
                              shared["attempts"], now, now).where(external_id.is_not(None), ~waiting))
    source = union_all(*selects) if rows > 1 else selects[0]
    return prepared(insert.from_select([T.c[name] for name in _DONE_VALUES], source)
                    .on_conflict_do_nothing(index_elements=["channel", "external_id"]).returning(T.c.id))
