"""Whether each staff chat can be written to: since when it cannot, and how many items it held.

The recorder tells it every outcome of a staff chat's item. A failure of the platform, the network or
the chat itself (not one message refused: that is the message's trouble, bot/delivery/policy.py)
starts an outage; the next item that gets through ends it. An outage that lasted `after` seconds
(5 minutes) makes /healthz answer 503 with the reason while it lasts, and when it ends admins get one
line in the operator chat's General topic: how many items were held and for how long.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.staff_chats import route_of
from bot.transport import Failure
from storage import OutboxItem, Target

UNREACHABLE_AFTER = 300.0  # seconds a staff chat may fail before /healthz says so
RECENT = 60.0  # a send this recent shows a chat (or children's chats) get messages
# Failures that say nothing gets through to the chat (as against one message refused).
CHAT_DOWN = frozenset({Failure.SERVER, Failure.NETWORK, Failure.NO_ACCESS, Failure.RECIPIENT_GONE})


Chat = tuple[Target, str | None]  # a staff chat: its target and region (children's chats: one entry)


def chat_of(item: OutboxItem) -> Chat:
    return (item.target, None if item.target is Target.CHILD else route_of(item.lane))


@dataclass(slots=True)
class Outage:
    target: Target
    region: str | None  # the region whose own chat it is (None: the default chat)
    since: float  # the clock's reading at the first failure
    reason: str
    held: set[int] = field(default_factory=set)  # the items that failed meanwhile
    seconds: float = 0.0  # how long it lasted (set when it ends)


class ChatHealth:
    def __init__(self, clock: Callable[[], float] = time.monotonic, after: float = UNREACHABLE_AFTER) -> None:
        self.clock, self.after = clock, after
        self._down: dict[Chat, Outage] = {}
        self._last_sent: dict[Chat, float] = {}  # by staff chat (children's chats together)

    def getting_through(self, item: OutboxItem) -> bool:
        """Whether an item for `item`'s chat (any child, for a child's) was sent within the last minute."""
        last = self._last_sent.get(chat_of(item))
        return last is not None and self.clock() - last < RECENT

    def failed(self, item: OutboxItem, failure: Failure, reason: str) -> None:
        if item.target is Target.CHILD or failure not in CHAT_DOWN:
            return
        chat = chat_of(item)
        outage = self._down.get(chat)
        if outage is None:
            outage = self._down[chat] = Outage(item.target, chat[1], self.clock(), reason)
        outage.reason = reason
        outage.held.add(item.id)

    def sent(self, item: OutboxItem) -> Outage | None:
        """An item reached its chat: the outage it ends, if it lasted long enough to be told."""
        self._last_sent[chat_of(item)] = self.clock()
        outage = self._down.pop(chat_of(item), None) if item.target is not Target.CHILD else None
        if outage is None:
            return None
        outage.seconds = self.clock() - outage.since
        return outage if outage.seconds >= self.after else None

    def problems(self) -> list[str]:
        """What /healthz names: each staff chat unreachable for `after` seconds or more."""
        now = self.clock()
        return [f"{outage.target.value}{'@' + outage.region if outage.region else ''} chat unreachable for {int(now - outage.since)} s ({outage.reason})"
                for outage in self._down.values() if now - outage.since >= self.after]
