"""The sends in flight: each item in a task of its own, at most `slots` at once."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any

from storage import OutboxItem

log = logging.getLogger(__name__)


class SendPool:
    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a send pool needs at least one slot")
        self.slots = slots
        self.in_flight: dict[int, asyncio.Task[None]] = {}
        self.progress = asyncio.Event()  # a send finished (flush waits for its sends by this)

    @property
    def free(self) -> int:
        return self.slots - len(self.in_flight)

    @property
    def full(self) -> bool:
        return len(self.in_flight) >= self.slots

    def start(self, item: OutboxItem, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=f"deliver-{item.id}")
        self.in_flight[item.id] = task
        return task

    def hold(self, item: OutboxItem, task: asyncio.Task[Any] | None) -> None:
        """`task` will send `item` (the next of its lane) in the slot it holds: no round starts it."""
        if task is not None:
            self.in_flight[item.id] = task

    def finished(self, item: OutboxItem) -> None:
        """Only after the item's outcome is committed: until then a re-claim of it is skipped."""
        self.in_flight.pop(item.id, None)
        self.progress.set()

    async def cancel_all(self) -> None:
        tasks = list(self.in_flight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            log.warning("delivery sends cancelled", extra={"items": [task.get_name() for task in tasks]})
            with suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
