"""The test-suite's fake Bot API server, observed from outside: when an update was made available to
getUpdates, and when the bot's first answer to it arrived. The fake itself is not changed."""
from __future__ import annotations

import time
from collections import deque
from contextvars import ContextVar
from typing import Any, Callable

from aiohttp import web

from tests.fakes.telegram_api import FakeTelegram, StoredMessage

clock = time.perf_counter
# When the HTTP request now being handled reached the fake (set per request task).
_arrival: ContextVar[float | None] = ContextVar("bench_arrival", default=None)

Listener = Callable[[int, StoredMessage], None]


class BenchTelegram(FakeTelegram):
    """FakeTelegram that timestamps updates and answers in private chats.

    * An update is "asked" the moment it joins the list that getUpdates serves (``_push_update``).
    * It is "answered" when the request carrying the bot's first message to that chat after it
      reaches the server (taken at the start of the request, before the fake's own work).
    Each answered update adds one sample ``(answer time, latency)``; ``listener`` hears of every
    bot message to a private chat, so the simulated children know when to act again.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Update ids keep growing across runs: a bot whose database remembers an older offset
        # (a reused PostgreSQL database) still sees every new update.
        self._next_update_id = int(time.time() * 1000)
        self.asked: dict[int, deque[float]] = {}
        self.samples: list[tuple[float, float]] = []
        self.listener: Listener | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        _arrival.set(clock())
        return await super()._handle(request)

    def _push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = super()._push_update(kind, payload)
        chat = (payload.get("chat") or (payload.get("message") or {}).get("chat") or {})
        if chat.get("type") == "private":
            self.asked.setdefault(chat["id"], deque()).append(clock())
        return update

    def _send(self, chat: Any, content: dict[str, Any], p: dict[str, Any], method: str) -> StoredMessage:
        stored = super()._send(chat, content, p, method)
        if chat.type == "private":
            arrived = _arrival.get() or clock()
            waiting = self.asked.get(chat.id)
            if waiting:
                self.samples.append((arrived, arrived - waiting.popleft()))
            if self.listener is not None:
                self.listener(chat.id, stored)
        return stored

    def forget_history(self) -> None:
        """Drop the call and update logs (only tests read them) so a long run stays small."""
        self.calls.clear()
        self.unknown_calls.clear()
        self.updates.clear()
