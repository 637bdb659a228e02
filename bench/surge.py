"""A surge with Telegram's limits ON, on a simulated clock: how long a counsellor waits for a card.

`python -m bench.surge` (options: --children N, --urgent-share F, --backlog N, --json).

N children consent within one minute; each consent queues the child's confirmation and the case card
(two Bot API calls in the case's operator chat: the topic, then the card). Cards wait for their chat's
allowance exactly as the delivery does it: the real `bot.limits.Limits` (aiolimiter leaky buckets:
about 20 messages a minute per group, one a second per child's chat, 30 a second overall), lanes
named by the real `bot.staff_chats.staff_lane` and `StaffChats.route` (one bucket per chat), claimed
in the order of `bot/delivery/rounds.py` (urgent first, then oldest; the first pending item of each
lane; an item whose buckets are full is left for the next round; rounds on hand-over and every
second), and a card's second call waiting in `acquire_extra` holds its chat's bucket so nothing jumps
ahead of a half-sent card. The event loop's clock is simulated, so twenty-five minutes of waiting
take a second or two. Sending itself is taken as instant: the wait for the allowance dominates.
Figures and method: bench/README.md, "Surge".
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
from dataclasses import dataclass, field

from bot.limits import Limits
from bot.outbox import child_lane
from bot.staff_chats import StaffChats, staff_lane
from storage import Priority, Target

ROUND_EVERY = 1.0  # the worker's rounds when nothing wakes it (bot/delivery/worker.py)
STEP = 0.05  # simulated seconds between looks at the sends waiting in acquire_extra
REGIONS = ("kyiv", "vinnytsia", "lviv")
DEFAULT_CHAT, REGION_CHATS = -1001, {"kyiv": -1002, "vinnytsia": -1003, "lviv": -1004}


class SimulatedLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock the simulation moves (aiolimiter reads `loop.time()`)."""

    now = 0.0

    def time(self) -> float:
        return self.now


@dataclass
class Item:
    """What `Limits` reads of an outbox item, and what the simulation needs to know of it."""

    id: int
    target: Target
    lane: str
    priority: Priority
    consented: float
    calls: int  # Bot API calls the item needs (a card: the topic, then the card)
    channel: str = "telegram"
    urgent: bool = False
    done: float | None = None


@dataclass
class Surge:
    limits: Limits
    pending: list[Item] = field(default_factory=list)
    sending: list[tuple[Item, int]] = field(default_factory=list)  # (item, calls still to make)
    cards: list[Item] = field(default_factory=list)
    ids: int = 0

    def queue(self, target: Target, lane: str, priority: Priority, at: float, calls: int, urgent: bool = False) -> Item:
        self.ids += 1
        item = Item(self.ids, target, lane, priority, at, calls, urgent=urgent)
        self.pending.append(item)
        return item

    async def round(self) -> None:
        """One claiming round: urgent first, then oldest; one item per lane; full buckets wait."""
        self.pending.sort(key=lambda item: (item.priority, item.id))
        seen = {item.lane for item, _ in self.sending}  # a lane sends one item at a time
        for item in list(self.pending):
            if item.lane in seen:
                continue
            seen.add(item.lane)
            if self.limits.has_capacity(item):
                await self.limits.acquire(item)
                self.pending.remove(item)
                self._sent_one(item, item.calls - 1)

    async def progress(self, now: float) -> None:
        """Sends waiting in acquire_extra take their next call as soon as their buckets allow."""
        for item, left in list(self.sending):
            limiters = self.limits.for_item(item)
            if all(limiter.has_capacity() for limiter in limiters):
                self.sending.remove((item, left))
                for limiter in limiters:
                    self._unhold(limiter)
                    await limiter.acquire()
                self._sent_one(item, left - 1)

    def _sent_one(self, item: Item, left: int) -> None:
        if left <= 0:
            item.done = SimulatedLoop.now
            return
        self.sending.append((item, left))
        for limiter in self.limits.for_item(item):
            self.limits._waiting[limiter] += 1  # what Limits._take marks while a sender waits  # noqa: SLF001

    def _unhold(self, limiter: object) -> None:
        waiting = self.limits._waiting  # noqa: SLF001 - the simulation plays Limits._take's part
        waiting[limiter] -= 1
        if not waiting[limiter]:
            del waiting[limiter]


async def run(children: int, chats: int, urgent_share: float, backlog: int = 0, seed: int = 1,
              urgent_at: float = 60.0) -> dict:
    """Children consent within a minute; or, with `backlog`, that many ordinary cards at once and one
    urgent card at `urgent_at` behind them (the run ends with it). The cards' consent→card times."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, SimulatedLoop)
    SimulatedLoop.now = 0.0
    rng = random.Random(seed)
    regional = {region: REGION_CHATS[region] for region in REGIONS[:chats]} if chats > 1 else {}
    staff = StaffChats(DEFAULT_CHAT, None, regional)
    surge = Surge(Limits(30, 1, 20))
    consents = [(0.0, False, REGIONS[n % len(REGIONS)]) for n in range(backlog)]
    consents += [(rng.uniform(0, 60), rng.random() < urgent_share, REGIONS[n % len(REGIONS)]) for n in range(children)]
    if backlog:  # one urgent card behind the backlog, once the group's allowance is long spent
        consents.append((urgent_at, True, REGIONS[0]))
    consents.sort(key=lambda consent: consent[0])
    next_round, next_digest, case = 0.0, 60.0, 0
    while consents or surge.pending or surge.sending:
        now = SimulatedLoop.now
        if backlog and any(card.urgent and card.done is not None for card in surge.cards[-1:]):
            break  # the urgent card is out: the backlog's own times are not what is measured here
        handed = False
        while consents and consents[0][0] <= now:
            _, urgent, region = consents.pop(0)
            case += 1
            priority = Priority.URGENT if urgent else Priority.NORMAL
            surge.queue(Target.CHILD, child_lane(f"child{case}"), Priority.NORMAL, now, 1)  # "sent: your number"
            lane = staff_lane(Target.OPERATOR, case, staff.route(Target.OPERATOR, region))
            surge.cards.append(surge.queue(Target.OPERATOR, lane, priority, now, 2, urgent))
            handed = True
        if now >= next_digest:  # scheduler.digest: one General line a minute while cards outrun the group
            next_digest += 60.0
            if sum(1 for item in surge.pending if item.target is Target.OPERATOR) > 20:
                surge.queue(Target.OPERATOR, staff_lane(Target.OPERATOR, "general"), Priority.URGENT, now, 1)
        await surge.progress(now)
        if handed or now >= next_round:
            await surge.round()
            next_round = now + ROUND_EVERY
        SimulatedLoop.now = round(now + STEP, 6)
    return _figures(surge.cards, backlog)


def _figures(cards: list[Item], backlog: int) -> dict:
    waits = {kind: sorted(card.done - card.consented for card in cards if card.urgent is urgent and card.done is not None)
             for kind, urgent in (("urgent", True), ("ordinary", False))}
    figures = {kind: {"n": len(times), "p50": _pct(times, 50), "p99": _pct(times, 99), "max": max(times, default=0)}
               for kind, times in waits.items()}
    if backlog:
        figures["urgent_behind_backlog"] = waits["urgent"][0] if waits["urgent"] else None
    return figures


def _pct(values: list[float], percent: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description="Consent→card latency in a surge, Telegram's limits on")
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--urgent-share", type=float, default=0.1)
    parser.add_argument("--backlog", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    loop = SimulatedLoop()
    try:
        results = {f"{chats} chat{'s' * (chats > 1)}": loop.run_until_complete(run(args.children, chats, args.urgent_share))
                   for chats in (1, 3)}
        # The urgent consent at every quarter second of a few group periods: the worst phase is reported.
        behind = [loop.run_until_complete(run(0, 1, 0, backlog=args.backlog, urgent_at=60 + quarter / 4))
                  ["urgent_behind_backlog"] for quarter in range(24)]
        results["backlog"] = {"urgent_behind_backlog": max(behind), "median": statistics.median(behind)}
    finally:
        loop.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"surge: {args.children} children consent within a minute, {args.urgent_share:.0%} urgent; "
          "Telegram's limits on (20/min per group, 1/s per chat, 30/s); simulated clock")
    for name in ("1 chat", "3 chats"):
        for kind in ("urgent", "ordinary"):
            f = results[name][kind]
            print(f"  {name:8} {kind:8} n={f['n']:4}  consent→card p50 {f['p50']:7.1f} s  p99 {f['p99']:7.1f} s")
    one, three = results["1 chat"]["ordinary"]["p50"], results["3 chats"]["ordinary"]["p50"]
    first = results["backlog"]["urgent_behind_backlog"]
    print(f"  three chats' p50 / one chat's: {three / one:.2f} (target ≤ 0.33)")
    print(f"  first urgent card behind {args.backlog} waiting: at most {first:.1f} s after consent, median "
          f"{results['backlog']['median']:.1f} s (target ≤ 10 s)")


if __name__ == "__main__":
    main()
