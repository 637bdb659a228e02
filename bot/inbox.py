"""Inbound durability: a platform update is handled once, in order per lane, and never silently lost.

Adapters confirm an update to the platform only after `receive` (or `receive_all`, for the new
updates of one poll) returns. Usually that is after the update was handled in the transaction that
also records it as done (its id, never its content), so its effects and its "done" mark commit
together or not at all; the new updates of one poll share that transaction. When that fails, or an
earlier update of the same lane still waits, the raw update is stored in the inbox instead
(encrypted), and the processor hands it to its channel's handler later the same way. A failing item is retried with
back-off, its lane waiting behind it to keep order, and parked after INBOX_MAX_ATTEMPTS with a log
line and a metric.

Several processes share the stored updates safely: a round claims pending rows with a lease
(`Inbox.claim`: `FOR UPDATE SKIP LOCKED` on PostgreSQL, then one UPDATE that leases them), each is taken in hand inside
its handling transaction only while it is still this process's and first of its lane (`Inbox.hold`),
and marked done only by its claimant (`Inbox.mark_done` checks the owner: otherwise the whole
transaction, the handler's effects included, rolls back). A lease of a process that stopped beating
(bot/heartbeat.py) is free at once; one whose lane another process is working through is let go.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Awaitable, Callable, NamedTuple, Protocol

from bot.heartbeat import process_owner
from storage import ConcurrentUpdate, Database, InboxItem, Transaction

log = logging.getLogger(__name__)

Handler = Callable[[Transaction, dict[str, Any]], Awaitable[None]]
BATCH = 200
TOGETHER = 20  # new updates handled in one transaction at most (a failure redoes them one by one)


PARALLEL_LANES = 32
LEASE_SECONDS = 60.0  # a claimed update is this process's for so long, unless its heartbeat stops first
OnParked = Callable[[Transaction, InboxItem], Awaitable[None]]


class Received(NamedTuple):
    """A new update as an adapter hands it over: its id, its lane, the update to handle, and its
    payload to store (made only if it must wait)."""

    external_id: str
    lane: str
    event: dict[str, Any]
    payload: Callable[[], dict[str, Any]]


class InboxMetrics(Protocol):
    def update_handled(self, channel: str) -> None: ...

    def update_parked(self, channel: str) -> None: ...


class InboxProcessor:
    def __init__(self, db: Database, handlers: dict[str, Handler], max_attempts: int,
                 metrics: InboxMetrics | None = None, *, owner: str | None = None,
                 lease_seconds: float = LEASE_SECONDS, on_parked: OnParked | None = None) -> None:
        self.db, self.handlers, self.max_attempts, self.metrics = db, handlers, max_attempts, metrics
        self.owner, self.lease_seconds, self.on_parked = owner or process_owner(), lease_seconds, on_parked
        self.wake = asyncio.Event()
        self._retry_at: dict[int, float] = {}
        self._slots = asyncio.Semaphore(PARALLEL_LANES)
        self.idle = asyncio.Event()  # set whenever a round found nothing to do (tests wait on it)
        self._arrivals: dict[str, list[tuple[Received, asyncio.Future[None]]]] = defaultdict(list)
        self._taking: dict[str, asyncio.Task[None]] = {}  # by channel: handles what arrived, batch by batch

    async def receive_one(self, channel: str, update: Received) -> None:
        """A webhook's update: handled with the others of `channel` that arrive while a batch is being
        handled, as `receive_all` handles a poll's, so that they share one transaction and one commit
        (Telegram posts up to 40 at once). Returns once it is handled or stored; raises if neither."""
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._arrivals[channel].append((update, arrived))
        taking = self._taking.get(channel)
        if taking is None or taking.done():
            self._taking[channel] = asyncio.create_task(self._take_arrivals(channel), name=f"inbox-{channel}")
        await arrived

    async def _take_arrivals(self, channel: str) -> None:
        arrivals = self._arrivals[channel]
        while arrivals:
            batch = arrivals[:]
            arrivals.clear()
            try:
                await self.receive_all(channel, [update for update, _arrived in batch])
            except Exception as error:  # noqa: BLE001 - each waiting request answers that it was not stored
                for _update, arrived in batch:
                    if not arrived.done():
                        arrived.set_exception(error)
            else:
                for _update, arrived in batch:
                    if not arrived.done():  # (a request given up meanwhile)
                        arrived.set_result(None)
            finally:
                for _update, arrived in batch:
                    arrived.cancel()  # only those still waiting: this task was cancelled (shutdown)

    async def receive_all(self, channel: str, updates: Sequence[Received]) -> None:
        """New updates, in order: handled together, in one transaction and so with one commit, while
        each is new and first in its lane; else, or if any of them fails, each on its own (`receive`).
        (Handled twice, then, as far as memory goes: a child's flood count may count one message twice.)"""
        for start in range(0, len(updates), TOGETHER):
            batch = updates[start:start + TOGETHER]
            if len(batch) > 1 and await self._handled_together(channel, batch):
                continue
            for update in batch:
                await self.receive(channel, *update)

    async def _handled_together(self, channel: str, batch: Sequence[Received]) -> bool:
        handler = self.handlers[channel]
        try:
            async with self.db.transaction() as tx:
                if await tx.inbox.add_done(channel, [(update.external_id, update.lane) for update in batch]) < len(batch):
                    raise _Queue  # a redelivery, or a lane waits: each on its own decides
                for update in batch:
                    await handler(tx, update.event)
        except Exception:  # noqa: BLE001 — all rolled back: each is received on its own, and logged there
            return False
        for _update in batch:
            self._handled(channel)
        return True

    async def receive(self, channel: str, external_id: str, lane: str, event: dict[str, Any],
                      payload: Callable[[], dict[str, Any]]) -> None:
        """A new update: handle `event` now, in the transaction that records the update as done; if its
        lane has updates waiting, or handling fails, store `payload()` to be handled in turn."""
        handler = self.handlers[channel]
        try:
            async with self.db.transaction() as tx:
                if not await tx.inbox.add_done(channel, [(external_id, lane)]):
                    if await tx.inbox.waiting_in_lane(lane):
                        raise _Queue
                    return  # seen before: a platform redelivery
                await handler(tx, event)
        except _Queue:
            pass
        except Exception as error:  # noqa: BLE001 — stored below and retried by the processor
            if not isinstance(error, ConcurrentUpdate):
                log.warning("update failed, stored for a retry", extra={"reason": type(error).__name__},
                            exc_info=error)
        else:
            self._handled(channel)
            return
        async with self.db.transaction() as tx:
            await tx.inbox.add(channel, external_id, lane, payload())
        self.wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.wake.clear()  # before the round: a wake-up during it is kept for the next one
            try:
                handled = await self.run_once()
            except Exception as error:  # noqa: BLE001 — e.g. the database is briefly unreachable
                log.error("inbox round failed", extra={"reason": type(error).__name__})
                handled = 0
            if handled == 0:
                self.idle.set()
                if stop.is_set():
                    return
                delay = min((at - time.monotonic() for at in self._retry_at.values()), default=5.0)
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=max(0.05, min(delay, 5.0)))
                except TimeoutError:
                    pass

    async def run_once(self) -> int:
        """Handle what is pending now; returns how many items were handled."""
        async with self.db.transaction() as tx:
            items = await tx.inbox.claim(self.owner, BATCH, self.lease_seconds)
        lanes: dict[str, list[InboxItem]] = defaultdict(list)
        for item in items:
            lanes[item.lane].append(item)
        if lanes:
            self.idle.clear()
        results = await asyncio.gather(*(self._lane(lane_items) for lane_items in lanes.values()))
        return sum(results)

    async def _lane(self, items: list[InboxItem]) -> int:
        done = 0
        async with self._slots:
            for item in items:
                if self._retry_at.get(item.id, 0) > time.monotonic() or not await self._handle(item):
                    break  # later updates of this lane wait: order matters within a conversation
                done += 1
        return done

    async def _handle(self, item: InboxItem) -> bool:
        handler = self.handlers.get(item.channel)
        try:
            async with self.db.transaction() as tx:
                if not await tx.inbox.hold(item.id, self.owner, self.lease_seconds):
                    # Taken over, or an earlier update of its lane is another process's: that one
                    # goes on with the lane.
                    await tx.inbox.let_go(item.lane, self.owner)
                    return False
                if handler is not None:
                    await handler(tx, item.payload)
                if not await tx.inbox.mark_done(item.id, self.owner):
                    raise _Lost  # rolls back the handler's effects too
        except (ConcurrentUpdate, _Lost):
            # Another process changed this conversation first (read again and redo, at once), or took
            # the update over (the next claim does not return it).
            self._retry_at[item.id] = time.monotonic()
            return False
        except Exception as error:  # noqa: BLE001 — any handler failure is retried, then parked visibly
            return await self._failed(item, error)
        self._retry_at.pop(item.id, None)
        self._handled(item.channel)
        return True

    def _handled(self, channel: str) -> None:
        if self.metrics:
            self.metrics.update_handled(channel)

    async def _failed(self, item: InboxItem, error: Exception) -> bool:
        reason = type(error).__name__  # never the message: it could quote what a child wrote
        async with self.db.transaction() as tx:
            parked = await tx.inbox.fail(item.id, reason, self.max_attempts, self.owner)
        if parked and self.on_parked is not None:
            await self._tell_parked(item)
        attempt = item.attempts + 1
        if parked:
            self._retry_at.pop(item.id, None)
            log.error("inbox item parked", extra={"item": item.id, "reason": reason, "attempts": attempt})
            if self.metrics:
                self.metrics.update_parked(item.channel)
            return True  # the lane moves on; the parked row stays for an admin to inspect
        self._retry_at[item.id] = time.monotonic() + min(60.0, 0.5 * 2 ** attempt)
        # exc_info: our JSON formatter keeps only the error's type; a developer's console shows the trace.
        log.warning("inbox item failed, will retry", extra={"item": item.id, "reason": reason, "attempt": attempt},
                    exc_info=error)
        return False

    async def _tell_parked(self, item: InboxItem) -> None:
        """Nobody is left unaware: staff see a line in the case's topic, the child a kind request to
        send it again (`on_parked`, in a transaction of its own: the park itself is committed)."""
        assert self.on_parked is not None
        try:
            async with self.db.transaction() as tx:
                await self.on_parked(tx, item)
        except Exception as error:  # noqa: BLE001 — the park is logged and counted above either way
            log.error("telling of a parked update failed", extra={"item": item.id, "reason": type(error).__name__})


class _Lost(Exception):
    """The update is no longer this process's: what was done with it is rolled back."""


class _Queue(Exception):
    """An earlier update of the lane waits: this one is stored behind it."""
