"""Telegram's published rate limits as `aiolimiter.AsyncLimiter` leaky buckets, chosen per outbox item.

An item needs capacity in two buckets: its channel's global bucket (about 30 messages a second per bot)
and its lane's bucket — one per child's chat (about one message a second), or one per staff chat
(about 20 messages a minute in a group). The delivery worker asks `has_capacity` before it starts an
item, so an item that would have to wait is left in the outbox and the next item (another child, or a
more urgent card) goes instead; senders that need several API calls for one item take the extra
capacity with `acquire_extra`, which waits.
"""
from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Iterable

from aiolimiter import AsyncLimiter

from storage import OutboxItem, Target

MAX_CHATS = 10_000  # per-chat buckets kept before idle ones are dropped
SWEEP_SECONDS = 1.0  # drained per-chat buckets are dropped this often: an idle child costs no memory
STAFF_TARGETS = frozenset({Target.OPERATOR, Target.POLICE})


def _bucket(rate: float, period: float) -> AsyncLimiter:
    """`rate` acquisitions per `period` seconds; rates below one stretch the period (a bucket holds one)."""
    if rate <= 0:
        raise ValueError("a rate limit must be positive")
    return AsyncLimiter(rate, period) if rate >= 1 else AsyncLimiter(1, period / rate)


class Limits:
    """Leaky buckets for every channel, child's chat and staff chat; all methods need a running loop."""

    def __init__(self, global_per_second: float, chat_per_second: float, group_per_minute: float,
                 *, max_chats: int = MAX_CHATS) -> None:
        # Validate now (at start) rather than on the first message.
        for rate in (global_per_second, chat_per_second, group_per_minute):
            _bucket(rate, 1)
        self._global_rate = global_per_second
        self._chat_rate = chat_per_second
        self._group_rate = group_per_minute
        self._max_chats = max_chats
        self._swept = time.monotonic()
        self._globals: dict[str, AsyncLimiter] = {}  # by channel
        self._chats: OrderedDict[str, AsyncLimiter] = OrderedDict()  # by lane, least recently used first
        self._groups: dict[str, AsyncLimiter] = {}  # by staff chat (the head of a staff lane)
        # Limiters that a sender is waiting on (acquire_extra): a new item must not jump ahead of a
        # message that is already half-sent, so such a limiter reports no capacity to new items.
        self._waiting: Counter[AsyncLimiter] = Counter()

    def for_item(self, item: OutboxItem) -> list[AsyncLimiter]:
        """The item's channel-wide bucket, then its lane's bucket (child's chat or staff chat)."""
        channel = self._globals.get(item.channel)
        if channel is None:
            channel = self._globals[item.channel] = _bucket(self._global_rate, 1)
        if item.target in STAFF_TARGETS:
            group = item.lane.split(":", 1)[0]  # the chat: "operator", or a region's own "operator@kyiv"
            lane = self._groups.get(group)
            if lane is None:
                lane = self._groups[group] = _bucket(self._group_rate, 60)
        else:
            lane = self._chat(item.lane)
        return [channel, lane]

    def has_capacity(self, item: OutboxItem) -> bool:
        """True if every bucket of the item could take one message now, without waiting."""
        return all(limiter.has_capacity() and not self._waiting[limiter] for limiter in self.for_item(item))

    async def acquire(self, item: OutboxItem) -> None:
        """Take one message's capacity from every bucket of the item (waits if there is none)."""
        await self._take(self.for_item(item))

    async def acquire_extra(self, item: OutboxItem) -> None:
        """One more API call for the same item (topic creation, card, album, a long text's next part)."""
        await self._take(self.for_item(item))

    @property
    def chats(self) -> int:
        """How many per-chat buckets are kept (for tests and metrics)."""
        return len(self._chats)

    async def _take(self, limiters: Iterable[AsyncLimiter]) -> None:
        # Narrowest bucket first: waiting for a chat's turn must not hold channel-wide capacity.
        for limiter in reversed(list(limiters)):
            self._waiting[limiter] += 1
            try:
                await limiter.acquire()
            finally:
                self._waiting[limiter] -= 1
                if not self._waiting[limiter]:
                    del self._waiting[limiter]

    def _chat(self, lane: str) -> AsyncLimiter:
        limiter = self._chats.get(lane)
        if limiter is not None:
            self._chats.move_to_end(lane)
            return limiter
        now = time.monotonic()
        if len(self._chats) >= self._max_chats or now - self._swept > SWEEP_SECONDS:
            self._swept = now
            self._drop_idle()
        limiter = self._chats[lane] = _bucket(self._chat_rate, 1)
        return limiter

    def _drop_idle(self) -> None:
        """Forget drained buckets: a drained bucket and a new one behave the same, so nothing is lost."""
        for lane, limiter in list(self._chats.items()):
            if not self._waiting[limiter] and limiter.has_capacity(limiter.max_rate):
                del self._chats[lane]
