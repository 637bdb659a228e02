"""The test-suite's fake Bot API server, observed from outside: when an update was made available to
getUpdates, and when the bot's first answer to it arrived. The fake itself is not changed."""
from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any, Callable

from aiohttp import web

from tests.fakes.telegram_api import FakeTelegram, StoredMessage

clock = time.perf_counter
# When the HTTP request now being handled reached the fake (set per request task).
_arrival: ContextVar[float | None] = ContextVar("bench_arrival", default=None)

Listener = Callable[[int, StoredMessage, float], None]


class BenchTelegram(FakeTelegram):
    """FakeTelegram that timestamps the two ends of every step in a private chat.

    * ``pushed_at[chat]``: when the chat's newest update joined the list getUpdates serves
      (``_push_update``), i.e. the moment it was made available to the bot.
    * ``listener(chat, message, arrived)`` hears of every message the bot sends to a private chat;
      ``arrived`` is when the request carrying it reached the server (the start of the HTTP request,
      before the fake's own work).
    The simulated children pair the two: a step's latency runs from its update's ``pushed_at`` to
    the arrival of the first message of the expected answer.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Update ids keep growing across runs: a bot whose database remembers an older offset
        # (a reused PostgreSQL database) still sees every new update.
        self._next_update_id = int(time.time() * 1000)
        self.pushed_at: dict[int, float] = {}
        self.listener: Listener | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        _arrival.set(clock())
        return await super()._handle(request)

    def _push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = super()._push_update(kind, payload)
        chat = (payload.get("chat") or (payload.get("message") or {}).get("chat") or {})
        if chat.get("type") == "private":
            self.pushed_at[chat["id"]] = clock()
        return update

    def _send(self, chat: Any, content: dict[str, Any], p: dict[str, Any], method: str) -> StoredMessage:
        stored = super()._send(chat, content, p, method)
        if chat.type == "private" and self.listener is not None:
            self.listener(chat.id, stored, _arrival.get() or clock())
        return stored

    def forget_history(self) -> None:
        """Drop the call and update logs (only tests read them) so a long run stays small."""
        self.calls.clear()
        self.unknown_calls.clear()
        self.updates.clear()
