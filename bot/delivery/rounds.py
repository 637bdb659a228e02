"""Claiming and scheduling: which ready items a round starts, within the rate limits.

A round works in one transaction: it reads ready items (`Outbox.ready`: at most the first pending
item of each lane, urgent items first, each child's item with the child's address; not the items
whose sends are in flight here, and no more than there are free send slots for), picks the ones to
start, and leases only those, for `lease_seconds`, in one statement (`Outbox.claim`). Going through
the items in that order, an item whose rate-limit buckets have room takes one message's capacity
there and then (so a later item in the same round sees what is left); an item whose buckets are
full, or whose channel has no sender here, is left unclaimed. So a full staff-group allowance never
holds back a child's reply, and when capacity returns the most urgent waiting item wins. Items left
waiting are read first again by the next round, so that round reads that many more, and other
lanes behind them are still reached.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.delivery.contract import ItemSender
from bot.delivery.pool import SendPool
from bot.limits import Limits
from storage import Database, OutboxItem


@dataclass(slots=True)
class Round:
    limit: int = 0
    ready: int = 0  # ready items read
    start: list[tuple[OutboxItem, ItemSender]] = field(default_factory=list)  # claimed: to send now
    waiting: int = 0  # ready items left unclaimed for want of rate-limit capacity
    no_slot: bool = False  # ready items were left unclaimed because every send slot is taken
    unsendable: int = 0  # left unclaimed because no sender here serves their channel
    failed: bool = False

    @property
    def full(self) -> bool:
        """Items were started and the read hit its limit: more may be ready right now."""
        return bool(self.start) and self.ready >= self.limit


class Rounds:
    def __init__(self, db: Database, senders: Mapping[str, ItemSender], limits: Limits, pool: SendPool, *,
                 owner: str, lease_seconds: float, max_claim: int) -> None:
        self.db, self.senders, self.limits, self.pool = db, senders, limits, pool
        self.owner, self.lease_seconds, self.max_claim = owner, lease_seconds, max_claim
        self.held_back = 0  # items left waiting last round (no capacity, no sender): read again
        self.backlog = False  # ready items wait for a free send slot: new ones go behind them
        self._renewed: datetime | None = None  # when the leases of the sends in flight were last renewed

    async def claim(self) -> Round:
        """One round's reading and claiming; the claimed items are in `Round.start`, to be sent once
        the claim is committed (no other worker can hold them then)."""
        free = self.pool.free
        # Read no more than can start (each item read is decrypted), plus those left waiting last time;
        # those can grow the read only up to max_claim, so that they cannot starve other lanes.
        rnd = Round(limit=max(0, free) + min(self.held_back, self.max_claim), no_slot=free <= 0)
        picked: list[tuple[OutboxItem, ItemSender]] = []
        claim = self._renewals()  # sends still running keep their lease
        if not rnd.limit and not claim:
            self.backlog = rnd.no_slot  # (every slot taken: the next finished send asks for a round)
            return rnd
        async with self.db.transaction() as tx:
            items = await tx.outbox.ready(tx.now, rnd.limit, self.owner, busy=self.pool.in_flight) if rnd.limit else []
            rnd.ready = len(items)
            for item in items:  # priority, then id: the most urgent item takes capacity first
                sender = self.senders.get(item.channel)
                if sender is None:
                    rnd.unsendable += 1  # left pending for a process that has the channel
                elif len(self.pool.in_flight) + len(picked) >= self.pool.slots:
                    rnd.no_slot = True  # the next round comes when a send finishes
                elif not self.limits.has_capacity(item):
                    rnd.waiting += 1  # not this round; the next item may go instead
                else:
                    # No await between the check and this: the capacity seen is the capacity taken.
                    # (Should another worker win the item below, that one message's capacity is lost.)
                    await self.limits.acquire(item)
                    picked.append((item, sender))
                    claim.append(item.id)
            won = await tx.outbox.claim(claim, tx.now, self.owner, self.lease_seconds)
        self.held_back = rnd.waiting + rnd.unsendable
        self.backlog = rnd.no_slot
        # (`hand_over` may have started an item meanwhile.)
        rnd.start = [(item, sender) for item, sender in picked if item.id in won and item.id not in self.pool.in_flight]
        return rnd

    def _renewals(self) -> list[int]:
        """The items in flight, once every third of a lease: a send may take longer than a lease,
        and its item must stay this worker's until the outcome is recorded."""
        now = self.db.now
        if self._renewed is not None and now - self._renewed < timedelta(seconds=self.lease_seconds / 3):
            return []
        self._renewed = now
        return list(self.pool.in_flight)
