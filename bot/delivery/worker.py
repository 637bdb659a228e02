"""The outbox delivery worker: every queued message reaches the platform once, in order, within the limits.

It is made of parts with one job each: `Rounds` (claiming and scheduling, rounds.py), `SendPool`
(the sends in flight, pool.py), `Recorder` (what became of each send, recorder.py) and the retry
policy (policy.py, a pure function). How an item leaves:

0. The common way: a new item whose lane (one child's chat, one case topic in a staff chat) has
   nothing waiting is written already leased to this worker (`lease_for`), and the moment its
   transaction commits, the outbox hands it over (`hand_over`), which starts it as a round would:
   no read, no claim of its own. An item it cannot start then (every send slot taken, a rate-limit
   bucket empty) stays leased to this worker: for the worker that holds it, a leased item counts as
   free, so its next round takes the item in its turn.
1. Everything else goes through rounds (rounds.py), woken by `nudge()`, by a finished send whose
   lane has an item waiting, and at least every second.
2. A round's claim is committed before anything is sent; then each item is sent in its own task, and
   the loop goes on (a slow send holds only its own lane).
3. Right after the platform answers, the recorder writes the outcome; while a send still runs, its
   lease is renewed every third of a lease.

The window (at-least-once, not exactly-once): a platform cannot be asked "did you already get this?",
so between the platform accepting a message and the commit of its record there is a window - the
length of one small database transaction - in which a crash, a kill or a lost database connection
leaves the item pending, and it is sent again after its lease: the person sees it twice. The same
holds when the network fails after the platform accepted a request and when `flush` has to cancel a
send at shutdown. Outside that window an item is sent at most once: claims and leases are exclusive
(the claim's UPDATE re-checks that the item is still free, and a hand-over happens before anything
else can run), a recorded item is never claimed again, and a lane never has two items in flight.

Logs carry only the outbox item id, the case id, the kind and a short reason - never text or ids.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
from collections.abc import Mapping

from bot.delivery.contract import DeliveryMetrics, ItemSender
from bot.delivery.health import ChatHealth
from bot.delivery.policy import KEEP_SECONDS
from bot.delivery.pool import SendPool
from bot.delivery.recorder import LaneLease, OnChatBack, OnChatTrouble, OnFailed, Recorder
from bot.delivery.rounds import Round, Rounds
from bot.limits import Limits
from storage import Database, OutboxItem

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # longest sleep between rounds: due retries and returning capacity are noticed by then
BUSY_PAUSE = 0.2  # shortest gap between rounds while ready items wait for capacity (each round re-claims them)
SEND_TIMEOUT = 300.0  # a send that hangs longer is treated as a network error (and retried)
OWNER_LIMIT = 64  # outbox.claimed_by is VARCHAR(64)

_workers = itertools.count(1)


def default_owner() -> str:
    """hostname:pid:n (n counts the workers of this process), cut to fit the claimed_by column."""
    tail = f":{os.getpid()}:{next(_workers)}"
    return socket.gethostname()[: OWNER_LIMIT - len(tail)] + tail


class DeliveryWorker:
    """Claims ready outbox items, sends them through their channel's sender and records the outcome."""

    def __init__(self, db: Database, senders: Mapping[str, ItemSender], limits: Limits, *,
                 owner: str | None = None, batch: int = 50, lease_seconds: float = 60, keep_seconds: float = KEEP_SECONDS,
                 on_failed: OnFailed | None = None, on_chat_trouble: OnChatTrouble | None = None,
                 on_chat_back: OnChatBack | None = None, health: ChatHealth | None = None,
                 metrics: DeliveryMetrics | None = None, send_timeout: float = SEND_TIMEOUT,
                 max_claim: int | None = None) -> None:
        if batch < 1 or lease_seconds <= 0:
            raise ValueError("batch must be at least 1, lease_seconds positive")
        self.senders = senders  # by channel
        self.limits = limits
        self.owner = (owner or default_owner())[:OWNER_LIMIT]
        self.lease_seconds = lease_seconds
        self.send_timeout = send_timeout
        self.wake = asyncio.Event()  # a new item waits for a round (`nudge`)
        self.pool = SendPool(batch)
        self.rounds = Rounds(db, senders, limits, self.pool, owner=self.owner, lease_seconds=lease_seconds,
                             max_claim=max_claim if max_claim is not None else 10 * batch)
        self.health = health or ChatHealth()  # which staff chats cannot be written to (/healthz)
        self.recorder = Recorder(db, keep=keep_seconds, on_failed=on_failed, on_chat_trouble=on_chat_trouble,
                                 metrics=metrics, health=self.health, on_chat_back=on_chat_back)
        self._running = False  # new items are queued leased to this worker only while it runs
        # A round may find work now: a finished send's lane has an item waiting, or items wait for a
        # send slot or capacity. (A send whose lane has nothing waiting needs no round: the read of
        # ready items is the dearest statement here.)
        self._due = asyncio.Event()

    # -- what the outbox calls --------------------------------------------------------------------

    def nudge(self) -> None:
        """A new item waits for a round (it was not handed over)."""
        self.wake.set()

    def lease_for(self, channel: str) -> tuple[str, float] | None:
        """(owner, lease seconds) for a new item of `channel` to be queued leased to this worker, which
        then sends it as soon as its transaction commits (`hand_over`). None while the worker is not
        running or has no sender for the channel."""
        if not self._running or channel not in self.senders:
            return None
        return self.owner, self.lease_seconds

    def hand_over(self, item: OutboxItem) -> None:
        """Start an item queued leased to this worker, right as its transaction commits (so before any
        round can see it); if it cannot start now, a round takes it in its turn."""
        sender = self.senders.get(item.channel)
        if self.pool.full:
            self.rounds.backlog = True
        if sender is None or self.rounds.backlog or not self.limits.has_capacity(item):
            # Not now; and while items wait for a send slot, new ones queue behind them (first come,
            # first served), in the rounds.
            self.wake.set()
            return
        self._start(item, sender, acquire=True)

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; then return at once, leaving sends in flight to `flush`."""
        self._running = True
        try:
            while not stop.is_set():
                self.wake.clear()
                self._due.clear()
                rnd = await self._safe_round()
                if rnd.failed:
                    await _pause((stop,))
                elif rnd.waiting:
                    # Waiting items are claimed and released again by every round: at most 5 rounds a second.
                    await _pause((stop,), BUSY_PAUSE)
                    await _pause((stop, self.wake, self._due), POLL_SECONDS - BUSY_PAUSE)
                elif not rnd.full:
                    await _pause((stop, self.wake, self._due))
        except BaseException:
            await self._cancel_in_flight()
            raise
        finally:
            self._running = False

    async def run_once(self) -> int:
        """One round, waiting for its sends to be recorded; return how many items it sent (or tried)."""
        tasks = self._begin(await self.rounds.claim())
        if tasks:
            await asyncio.gather(*tasks)
        return len(tasks)

    async def flush(self, timeout: float) -> None:
        """At shutdown: deliver what is ready and finish sends in flight for up to `timeout` seconds.

        Sends still running then are cancelled; their items stay leased and go out again after the
        lease runs out (the documented window: such a message may be seen twice).
        """
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                while True:
                    self.pool.progress.clear()
                    rnd = await self._safe_round()
                    if not rnd.start and not rnd.waiting and not rnd.failed and not self.pool.in_flight:
                        return  # nothing ready (that a sender here could send), nothing in flight
                    if not rnd.full:
                        await _pause((self.pool.progress,) if self.pool.in_flight else ())
        except TimeoutError:
            if not deadline.expired():
                raise
            log.warning("delivery flush timed out", extra={"in_flight": len(self.pool.in_flight)})
        finally:
            await self._cancel_in_flight()

    async def _safe_round(self) -> Round:
        try:
            rnd = await self.rounds.claim()
        except Exception as error:  # noqa: BLE001 - the loop must outlive a database hiccup
            log.error("delivery round failed", extra={"reason": type(error).__name__}, exc_info=True)
            return Round(failed=True)
        self._begin(rnd)
        return rnd

    def _begin(self, rnd: Round) -> list[asyncio.Task[None]]:
        return [self._start(item, sender) for item, sender in rnd.start]

    # -- one send ---------------------------------------------------------------------------------

    def _start(self, item: OutboxItem, sender: ItemSender, acquire: bool = False) -> asyncio.Task[None]:
        return self.pool.start(item, self._deliver(item, sender, acquire))

    async def _deliver(self, item: OutboxItem, sender: ItemSender, acquire: bool) -> None:
        """Send `item`; then, in the same task and send slot, each item behind it in its lane that its
        record leased to this worker (the lane goes on without a round), while there is capacity."""
        following: OutboxItem | None = item
        while following is not None:
            item = following
            following = await self._deliver_one(item, sender, acquire)
            if following is None:
                return
            next_sender = self.senders.get(following.channel)
            if next_sender is None or self.rounds.backlog or not self.limits.has_capacity(following):
                self.pool.finished(following)  # it stays leased to this worker: a round takes it in its turn
                self._due.set()
                return
            sender, acquire = next_sender, True

    async def _deliver_one(self, item: OutboxItem, sender: ItemSender, acquire: bool) -> OutboxItem | None:
        """One send and its record; the item behind it in its lane if the record leased it here."""
        followed = True  # a round is due unless the outcome is recorded and nothing is left waiting in the lane
        following = None
        reserved: list[OutboxItem] = []  # items behind it leased here by a record (a retried one may lease twice)
        task = asyncio.current_task()

        def reserve(behind: OutboxItem) -> None:
            reserved.append(behind)
            self.pool.hold(behind, task)

        try:
            if acquire:  # (a round takes the capacity before it starts the send)
                await self.limits.acquire(item)
            try:
                async with asyncio.timeout(self.send_timeout):
                    sent = await sender.send(item, self.limits)
            except Exception as error:  # noqa: BLE001 - every failure is retried or given up, never lost
                await self.recorder.failed(item, error)
            else:
                after = await self.recorder.sent(item, sent, LaneLease(self.owner, self.lease_seconds, reserve))
                if after is not None:
                    following = after.following
                    followed = after.lane_waits and following is None
        finally:
            for behind in reserved:  # held only while it is the one this task sends next
                if following is None or behind.id != following.id:
                    self.pool.finished(behind)
            self.pool.finished(item)
            if followed or self.rounds.backlog or self.rounds.held_back:
                self._due.set()
        return following

    async def _cancel_in_flight(self) -> None:
        await self.pool.cancel_all()
        await self.recorder.drain()


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
