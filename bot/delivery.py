"""The outbox delivery worker: every queued message reaches the platform once, in order, within the limits.

How an item leaves (DESIGN rule 3):

0. The common way: a new item whose lane (one child's chat, one case topic in a staff chat) has
   nothing waiting is written already leased to this worker (`lease_for`, `Outbox.add_leased`), and
   the moment its transaction commits, `hand_over` starts it as a round would (below), with no read
   and no claim of its own. An item it cannot start then (every send slot taken, a rate-limit bucket
   empty) stays leased to this worker: for the worker that holds it, a leased item counts as free,
   so its next round takes the item in its turn.
1. Everything else goes through rounds. A round works in one transaction: it reads ready items
   (`Outbox.ready`: at most the first pending item of each lane, urgent items first, each child's
   item with the child's address; not the items whose sends are in flight here, and no more than it
   has free send slots for), picks the ones to start, and leases only those, for `lease_seconds`, in
   one statement (`Outbox.claim`). Going through the items in that order, an item whose rate-limit
   buckets have room takes one message's capacity there and then (so a later item in the same round
   sees what is left); an item whose buckets are full, or whose channel has no sender here, is left
   unclaimed. So a full staff-group allowance never holds back a child's reply, and when capacity
   returns the most urgent waiting item wins. Items left waiting would be read first again by the
   next round, so that round reads that many more, and other lanes behind them are still reached.
2. The claim is committed before anything is sent; then each item the claim won is sent in its own
   task, and the loop goes on (a slow send holds only its own lane).
3. Right after the platform answers, a new transaction records the outcome: `mark_sent` (with the ids
   of the bot's messages, also remembered for a child's quick exit; sends that finish together are
   recorded in one transaction), `retry_later`, or `mark_failed` plus the `on_failed` hook, each only
   if the item is still pending (one cancelled meanwhile, e.g. because the child erased their data,
   stays cancelled and nothing of it is recorded). Until that commit the item stays leased to this
   worker, so no other worker can send it meanwhile; while its send is still running, this worker
   renews the leases of its sends in flight every third of a lease.

The window (at-least-once, not exactly-once): a platform cannot be asked "did you already get this?",
so between the platform accepting a message and the commit of `mark_sent` there is a window — the
length of one small database transaction — in which a crash, a kill or a lost database connection
leaves the item pending. Its lease runs out (at most `lease_seconds`) and it is sent again: the person
sees it twice. The same holds when the network fails after the platform accepted a request (the
sender sees a timeout) and when `flush` has to cancel a send at shutdown. Outside that window an item
is sent at most once: claims and leases are exclusive (the claim's UPDATE re-checks that the item is
still free, and a hand-over happens before anything else can run), a recorded item is never claimed
again, and a lane never has two items in flight.

Logs carry only the outbox item id, the case id, the kind and a short reason — never text or
platform ids. `DeliveryError.reason` is stored and logged, so senders must not put message text or
platform ids in it.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import re
import socket
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.limits import Limits
from storage import Database, OutboxItem, Target, Transaction

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # longest sleep between rounds: due retries and returning capacity are noticed by then
BUSY_PAUSE = 0.2  # shortest gap between rounds while ready items wait for capacity (each round re-claims them)
MAX_BACKOFF = 300.0
JITTER = 0.1
SEND_TIMEOUT = 300.0  # a send that hangs longer is treated as a network error (and retried)
RECORD_TRIES = 3  # the outcome of a send is written this many times before giving up
RECORD_BACKOFF = 0.5
REASON_LIMIT = 200
OWNER_LIMIT = 64  # outbox.claimed_by is VARCHAR(64)

_workers = itertools.count(1)

OnFailed = Callable[[Transaction, OutboxItem, str], Awaitable[None]]


class DeliveryError(Exception):
    """A sender's failure, said in the worker's terms.

    permanent: never retried (the child blocked the bot, their chat is gone, the text is too long…).
    retry_after: the platform asked to wait this many seconds (Telegram's 429); retried exactly then.
    Otherwise, like any other exception from a sender: retried with exponential back-off.
    reason_class: optional metrics label ("429", "5xx", "network", "other"); guessed when not given.
    """

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: float | None = None,
                 reason_class: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.reason_class = reason_class


class Sender(Protocol):
    """Turns one outbox item into platform calls; one per channel ("telegram", "viber", "console")."""

    async def send(self, item: OutboxItem, limits: Limits) -> dict[str, Any] | None:
        """Send the item; return a JSON-able result (e.g. {"message_ids": [..]}) or None.

        The worker has already taken one message's capacity for the item; a sender that makes more
        than one API call calls `await limits.acquire_extra(item)` before each further call.
        """
        ...


class DeliveryMetrics(Protocol):
    """What the worker counts; reason_class is one of "429", "5xx", "network", "other"."""

    def delivered(self, kind: str) -> None: ...

    def retried(self, kind: str, reason_class: str) -> None: ...

    def failed(self, kind: str) -> None: ...


@dataclass(slots=True)
class _Round:
    limit: int = 0
    ready: int = 0  # ready items read
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    waiting: int = 0  # ready items left unclaimed for want of rate-limit capacity
    no_slot: bool = False  # ready items were left unclaimed because `batch` sends are in flight
    unsendable: int = 0  # left unclaimed because no sender here serves their channel
    failed: bool = False

    @property
    def full(self) -> bool:
        """Items were started and the read hit its limit: more may be ready right now."""
        return bool(self.tasks) and self.ready >= self.limit


def default_owner() -> str:
    """hostname:pid:n (n counts the workers of this process), cut to fit the claimed_by column."""
    tail = f":{os.getpid()}:{next(_workers)}"
    return socket.gethostname()[: OWNER_LIMIT - len(tail)] + tail


def backoff_seconds(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Delay after the `attempt`-th failed attempt: min(300, 2**attempt) seconds plus up to 10 %."""
    base = min(MAX_BACKOFF, 2.0 ** min(attempt, 32))
    return base * (1 + JITTER * rng())


def reason_class(error: BaseException) -> str:
    """The metrics label of a failure: "429", "5xx", "network" or "other"."""
    if isinstance(error, DeliveryError):
        if error.retry_after is not None:
            return "429"
        if error.reason_class:
            return error.reason_class
        if error.__cause__ is not None:
            return reason_class(error.__cause__)
        return "5xx" if re.search(r"\b5\d\d\b|server error|bad gateway|unavailable", error.reason, re.I) else "other"
    if isinstance(error, TimeoutError | ConnectionError | OSError):
        return "network"
    names = [cls.__name__ for cls in type(error).__mro__]
    if any("ServerError" in name for name in names):  # aiogram's TelegramServerError
        return "5xx"
    if any(word in name for name in names for word in ("Network", "Connect", "Timeout", "Disconnect")):
        return "network"  # aiogram's TelegramNetworkError, aiohttp's and httpx's connection errors
    status = getattr(error, "status", None) or getattr(error, "status_code", None)
    if isinstance(status, int):
        if status == 429:
            return "429"
        if 500 <= status < 600:
            return "5xx"
    return "other"


def short_reason(error: BaseException) -> str:
    """What may be logged and stored: a DeliveryError's reason, else only the exception's type and place."""
    if isinstance(error, DeliveryError):
        reason = error.reason
    else:
        # An exception's message may quote what was being sent; its type and line may not.
        reason = type(error).__name__
        place = None
        for frame, line in traceback.walk_tb(error.__traceback__):
            place = f"{os.path.basename(frame.f_code.co_filename)}:{line}"
        if place:
            reason += f" at {place}"
    return reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 1] + "…"


class DeliveryWorker:
    """Claims ready outbox items, sends them through the channel's sender and records the outcome."""

    def __init__(
        self,
        db: Database,
        senders: dict[str, Sender],
        limits: Limits,
        wake: asyncio.Event,
        *,
        owner: str | None = None,
        batch: int = 50,
        lease_seconds: float = 60,
        max_attempts: int = 30,
        on_failed: OnFailed | None = None,
        metrics: DeliveryMetrics | None = None,
        send_timeout: float = SEND_TIMEOUT,
        max_claim: int | None = None,
    ) -> None:
        if batch < 1 or max_attempts < 1 or lease_seconds <= 0:
            raise ValueError("batch and max_attempts must be at least 1, lease_seconds positive")
        self.db = db
        self.senders = senders  # by channel; the app may fill it after construction
        self.limits = limits
        self.wake = wake
        self.owner = (owner or default_owner())[:OWNER_LIMIT]
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.on_failed = on_failed
        self.metrics = metrics
        self.send_timeout = send_timeout
        # Items left waiting last round (no capacity, no sender) are read again; the read grows by
        # their number, up to this, so that they cannot fill every batch and starve other lanes.
        self.max_claim = max_claim if max_claim is not None else 10 * batch
        self._held_back = 0
        self._running = False  # new items are queued leased to this worker only while it runs
        self._backlog = False  # ready items wait for a free send slot: new ones go behind them
        self._renewed: datetime | None = None  # when the leases of the sends in flight were last renewed
        self._sent_batch: list[tuple[OutboxItem, Callable[[Transaction], Awaitable[bool]], asyncio.Future[bool | None]]] = []
        self._recorder: asyncio.Task[None] | None = None  # records the sent items of a batch
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._progress = asyncio.Event()  # a send finished (flush waits for its sends by this)
        # A round may find work now: a finished send's lane has an item waiting, or items wait for a
        # send slot or capacity. (A send whose lane has nothing waiting needs no round: the read of
        # ready items is the dearest statement here.)
        self._due = asyncio.Event()

    # -- public loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; then return at once, leaving sends in flight to `flush`."""
        self._running = True
        try:
            while not stop.is_set():
                self.wake.clear()
                self._due.clear()
                rnd = await self._safe_round()
                if rnd.failed:
                    await self._pause((stop,))
                elif rnd.waiting:
                    # Waiting items are claimed and released again by every round: at most 5 rounds a second.
                    await self._pause((stop,), BUSY_PAUSE)
                    await self._pause((stop, self.wake, self._due), POLL_SECONDS - BUSY_PAUSE)
                elif not rnd.full:
                    await self._pause((stop, self.wake, self._due))
        except BaseException:
            await self._cancel_in_flight()
            raise
        finally:
            self._running = False

    async def run_once(self) -> int:
        """One round, waiting for its sends to be recorded; return how many items it sent (or tried)."""
        rnd = await self._round()
        if rnd.tasks:
            await asyncio.gather(*rnd.tasks)
        return len(rnd.tasks)

    async def flush(self, timeout: float) -> None:
        """At shutdown: deliver what is ready and finish sends in flight for up to `timeout` seconds.

        Sends still running then are cancelled; their items stay leased and go out again after the
        lease runs out (the documented window: such a message may be seen twice).
        """
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                while True:
                    self._progress.clear()
                    rnd = await self._safe_round()
                    if not rnd.tasks and not rnd.waiting and not rnd.failed and not self._in_flight:
                        return  # nothing ready (that a sender here could send), nothing in flight
                    if not rnd.full:
                        await self._pause((self._progress,) if self._in_flight else ())
        except TimeoutError:
            if not deadline.expired():
                raise
            log.warning("delivery flush timed out", extra={"in_flight": len(self._in_flight)})
        finally:
            await self._cancel_in_flight()

    # -- one round --------------------------------------------------------------------------------

    async def _safe_round(self) -> _Round:
        try:
            return await self._round()
        except Exception as error:  # noqa: BLE001 - the loop must outlive a database hiccup
            log.error("delivery round failed", extra={"reason": short_reason(error)}, exc_info=True)
            return _Round(failed=True)

    async def _round(self) -> _Round:
        free_slots = self.batch - len(self._in_flight)
        # Read no more than can start (each item read is decrypted), plus those left waiting last time.
        rnd = _Round(limit=max(0, free_slots) + min(self._held_back, self.max_claim), no_slot=free_slots <= 0)
        start: list[tuple[OutboxItem, Sender]] = []
        claim = self._renewals()  # sends still running keep their lease
        if not rnd.limit and not claim:
            return rnd
        async with self.db.transaction() as tx:
            items = await tx.outbox.ready(tx.now, rnd.limit, self.owner, busy=self._in_flight) if rnd.limit else []
            rnd.ready = len(items)
            for item in items:  # priority, then id: the most urgent item takes capacity first
                sender = self.senders.get(item.channel)
                if sender is None:
                    rnd.unsendable += 1  # left pending for a process that has the channel
                elif len(self._in_flight) + len(start) >= self.batch:
                    rnd.no_slot = True  # the next round comes when a send finishes
                elif not self.limits.has_capacity(item):
                    rnd.waiting += 1  # not this round; the next item may go instead
                else:
                    # No await between the check and this: the capacity seen is the capacity taken.
                    # (Should another worker win the item below, that one message's capacity is lost.)
                    await self.limits.acquire(item)
                    start.append((item, sender))
                    claim.append(item.id)
            won = await tx.outbox.claim(claim, tx.now, self.owner, self.lease_seconds)
        self._held_back = rnd.waiting + rnd.unsendable
        self._backlog = rnd.no_slot
        # Sent only after the claims are committed: no other worker can hold these items now.
        for item, sender in start:
            if item.id in won and item.id not in self._in_flight:  # (`hand_over` may have started it meanwhile)
                rnd.tasks.append(self._spawn(item, self._deliver(item, sender)))
        return rnd

    def _renewals(self) -> list[int]:
        """The items in flight, once every third of a lease: a send may take longer than a lease
        (up to `send_timeout`), and its item must stay this worker's until the outcome is recorded."""
        now = self.db.now
        if self._renewed is not None and now - self._renewed < timedelta(seconds=self.lease_seconds / 3):
            return []
        self._renewed = now
        return list(self._in_flight)

    # -- hand-over: a new item straight from its transaction ----------------------------------------

    def lease_for(self, channel: str) -> tuple[str, float] | None:
        """(owner, lease seconds) for a new item of `channel` to be queued leased to this worker, which
        then sends it as soon as its transaction commits (`hand_over`): no round, no claim. None while
        the worker is not running or has no sender for the channel."""
        if not self._running or channel not in self.senders:
            return None
        return self.owner, self.lease_seconds

    def hand_over(self, item: OutboxItem) -> None:
        """Start an item queued leased to this worker, right as its transaction commits (so before any
        round can see it), as a round would; if it cannot start now (no free send slot, no rate-limit
        capacity), a round takes it in its turn: the item is free for this worker."""
        sender = self.senders.get(item.channel)
        if len(self._in_flight) >= self.batch:
            self._backlog = True
        if sender is None or self._backlog or not self.limits.has_capacity(item):
            # Not now; and while items wait for a send slot, new ones queue behind them (first come,
            # first served), in the rounds.
            self.wake.set()
            return
        self._spawn(item, self._deliver(item, sender, acquire=True))

    def _spawn(self, item: OutboxItem, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=f"deliver-{item.id}")
        self._in_flight[item.id] = task
        return task

    async def _deliver(self, item: OutboxItem, sender: Sender, acquire: bool = False) -> None:
        followed = True  # unless the outcome is recorded and nothing waits behind it in its lane
        try:
            if acquire:  # (a round takes the capacity before it starts the send)
                await self.limits.acquire(item)
            try:
                async with asyncio.timeout(self.send_timeout):
                    result = await sender.send(item, self.limits)
            except Exception as error:  # noqa: BLE001 - every failure is retried or given up, never lost
                await self._failed(item, error)
            else:
                followed = await self._sent(item, result) is not False
        finally:
            # Only after the outcome is committed: until then this worker skips the item if re-claimed.
            self._in_flight.pop(item.id, None)
            self._progress.set()
            if followed or self._backlog or self._held_back:
                self._due.set()

    # -- outcomes ---------------------------------------------------------------------------------

    async def _sent(self, item: OutboxItem, result: Any) -> bool | None:
        """Record a sent item (with others that finished together); whether an item waits behind it
        in its lane (None: not recorded)."""
        try:
            json.dumps(result)
        except (TypeError, ValueError):
            log.error("sender returned a result that is not JSON", extra=self._fields(item))
            result = None  # the message left: record it anyway, or it would be sent again

        followed: bool | None = None

        async def record(tx: Transaction) -> bool:
            nonlocal followed
            if not await tx.outbox.mark_sent(item.id, result):
                return self._not_pending(item, "sent")
            if item.target == Target.CHILD and item.conversation_key and isinstance(result, dict):
                for message_id in result.get("message_ids") or ():
                    if isinstance(message_id, int) and not isinstance(message_id, bool):
                        await tx.chat_messages.add(item.conversation_key, message_id, True)
            followed = await tx.outbox.waiting_in_lane(item.lane)
            return True

        # Sends that finish together are recorded together: one transaction for all of them.
        recorded = asyncio.get_running_loop().create_future()
        self._sent_batch.append((item, record, recorded))
        if len(self._sent_batch) == 1:  # the first since the last batch was taken: it needs a recorder
            self._recorder = asyncio.create_task(self._record_together(), name="record-sent")
        if await recorded:
            self._count("delivered", item.kind)
        return followed

    async def _record_together(self) -> None:
        """Record the batch of sent items in one transaction; if that fails, each on its own (with
        retries), so that one item's trouble costs no other item its record."""
        batch, self._sent_batch = self._sent_batch, []
        try:
            async with self.db.transaction() as tx:
                outcomes = [await record(tx) for _item, record, _recorded in batch]
        except Exception:  # noqa: BLE001 - retried one by one below, each with its own log lines
            outcomes = [await self._record(item, "sent", record) for item, record, _recorded in batch]
        for (_item, _record, recorded), outcome in zip(batch, outcomes, strict=True):
            if not recorded.done():  # (its send was cancelled meanwhile, at shutdown)
                recorded.set_result(outcome)

    async def _failed(self, item: OutboxItem, error: Exception) -> None:
        reason = short_reason(error)
        attempt = item.attempts + 1
        kind = reason_class(error)
        if isinstance(error, DeliveryError) and error.permanent:
            await self._give_up(item, reason, attempt)
            return
        if isinstance(error, DeliveryError) and error.retry_after is not None:
            delay = max(0.0, float(error.retry_after))
        elif attempt >= self.max_attempts:
            await self._give_up(item, reason, attempt)
            return
        else:
            delay = backoff_seconds(attempt)

        async def record(tx: Transaction) -> bool:
            if not await tx.outbox.retry_later(item.id, tx.now + timedelta(seconds=delay), reason):
                return self._not_pending(item, "retry")
            return True

        if await self._record(item, "retry", record):
            log.warning("delivery retry", extra={**self._fields(item), "attempt": attempt, "reason": reason,
                                                  "reason_class": kind, "retry_in": round(delay, 1)})
            self._count("retried", item.kind, kind)

    async def _give_up(self, item: OutboxItem, reason: str, attempt: int) -> None:
        async def record(tx: Transaction, hook: bool = True) -> bool:
            if not await tx.outbox.mark_failed(item.id, reason):
                return self._not_pending(item, "failed")
            if hook and self.on_failed is not None:
                await self.on_failed(tx, item, reason)
            return True

        hooked = self.on_failed is not None
        done = await self._record(item, "failed", record, tries=1 if hooked else RECORD_TRIES)
        if done is None and hooked:
            # The hook (or its transaction) failed: the item must still stop being retried.
            log.error("on_failed hook failed; marking the item failed without it", extra=self._fields(item))
            done = await self._record(item, "failed", lambda tx: record(tx, hook=False))
        if done:
            log.warning("delivery failed", extra={**self._fields(item), "attempt": attempt, "reason": reason})
            self._count("failed", item.kind)

    def _not_pending(self, item: OutboxItem, outcome: str) -> bool:
        """The outcome's UPDATE found the item finished meanwhile (e.g. cancelled because the child
        erased their data, or gone): say so; False, as nothing was recorded."""
        log.info("delivery outcome not recorded: item no longer pending",
                 extra={**self._fields(item), "outcome": outcome, "status": "not pending"})
        return False

    async def _record(self, item: OutboxItem, outcome: str, write: Callable[[Transaction], Awaitable[bool]],
                      tries: int = RECORD_TRIES) -> bool | None:
        """Run `write` in its own transaction, retrying a failing database; None if it never committed."""
        for attempt in range(1, tries + 1):
            try:
                async with self.db.transaction() as tx:
                    return await write(tx)
            except Exception as error:  # noqa: BLE001 - logged; the lease makes the item come back
                log.error("could not record a delivery outcome", exc_info=True, extra={
                    **self._fields(item), "outcome": outcome, "try": attempt, "reason": short_reason(error)})
                if attempt < tries:
                    await asyncio.sleep(RECORD_BACKOFF * attempt)
        return None

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _fields(item: OutboxItem) -> dict[str, Any]:
        return {"item": item.id, "case": item.case_id, "kind": item.kind}

    def _count(self, name: str, *args: str) -> None:
        if self.metrics is None:
            return
        try:
            getattr(self.metrics, name)(*args)
        except Exception:  # noqa: BLE001 - a metrics bug must not stop deliveries
            log.exception("delivery metrics failed")

    @staticmethod
    async def _pause(events: tuple[asyncio.Event, ...], timeout: float = POLL_SECONDS) -> None:
        """Wait until one of `events` is set or `timeout` passes."""
        if any(event.is_set() for event in events):
            return
        waiters = [asyncio.create_task(event.wait()) for event in events]
        try:
            if waiters:
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(timeout)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _cancel_in_flight(self) -> None:
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            log.warning("delivery sends cancelled", extra={"items": [t.get_name() for t in tasks]})
            with suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
        if self._recorder is not None:  # what was sent is still recorded: a moment's work
            await asyncio.gather(self._recorder, return_exceptions=True)
