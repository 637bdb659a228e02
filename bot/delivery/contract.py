"""What the delivery worker asks of each channel's item sender, and what it gets back."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.limits import Limits
from storage import OutboxItem


@dataclass(frozen=True, slots=True)
class Sent:
    """What became of a sent item: the ids of the bot's messages (remembered for a child's quick
    exit, and to link a relayed message to its case) and, for a case card, its topic."""

    message_ids: tuple[int, ...] = ()
    topic_id: int | None = None

    def to_json(self) -> dict[str, Any] | None:
        found: dict[str, Any] = {}
        if self.message_ids:
            found["message_ids"] = list(self.message_ids)
        if self.topic_id is not None:
            found["topic_id"] = self.topic_id
        return found or None


class ItemSender(Protocol):
    """Turns one outbox item into a channel's transport calls (bot/delivery/courier.py does it for
    every channel); raises bot.transport.SendError when the platform did not take it."""

    async def send(self, item: OutboxItem, limits: Limits) -> Sent | None:
        """Send the item. The worker has taken one message's capacity for it already; a sender that
        makes more than one call awaits `limits.acquire_extra(item)` before each further call."""
        ...


class DeliveryMetrics(Protocol):
    """What the worker counts; reason is one of "429", "5xx", "network", "other"."""

    def delivered(self, kind: str) -> None: ...

    def retried(self, kind: str, reason: str) -> None: ...

    def failed(self, kind: str) -> None: ...
