"""Telling admins, in a private message, that a staff chat cannot be written to (at most hourly)."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from bot.transport import Address, SendError, Transport
from dialogs.engine import Engine
from storage import Target

log = logging.getLogger(__name__)

ALARM_EVERY = 3600.0


class AdminAlarm:
    """The delivery's `on_chat_trouble`: cards and notices wait meanwhile, nothing is dropped."""

    def __init__(self, transport: Transport, engine: Engine, admin_ids: Sequence[int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.transport, self.engine, self.admin_ids, self.clock = transport, engine, admin_ids, clock
        self._told: dict[tuple[Target, str | None], float] = {}

    async def __call__(self, target: Target, reason: str, region: str | None = None) -> None:
        """`region`: the region whose own chat it is (None: the default chat)."""
        now = self.clock()
        if now - self._told.get((target, region), -ALARM_EVERY) < ALARM_EVERY:
            return
        self._told[target, region] = now
        chat = target.value if region is None else f"{target.value} · {region}"
        log.error("a staff chat is unreachable; deliveries wait", extra={"chat": chat, "reason": reason})
        text = self.engine.say(self.engine.default_language, "operator.chat_unreachable", role=chat, reason=reason)
        for admin in self.admin_ids:
            try:
                await self.transport.send_text(Address(admin), text)
            except SendError:
                pass  # the admin never started a private chat with the bot: the log line remains
