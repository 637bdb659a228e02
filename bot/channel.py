"""What every channel (Telegram, Viber, the console) is to the rest of the bot.

The composition root (app/) builds each channel's transport first (the delivery needs it), then the
channel itself with the services it feeds, then starts it with the inbox it hands its updates to.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from bot.inbox import InboxProcessor
from bot.transport import Transport
from storage import ChannelName, Transaction

# (method, path, handler) of a web route a channel serves: its webhook, Viber's one-time media files.
Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


class StartupError(Exception):
    """Something outside the code must be fixed first; the message says what, in the platform's words."""


class Channel(Protocol):
    name: ChannelName
    transport: Transport

    async def handle(self, tx: Transaction, update: dict[str, Any]) -> None:
        """The inbox's handler: one update of this channel, new or as stored, inside `tx`."""
        ...

    async def check(self) -> None:
        """Check the world before serving (chats, rights); raise StartupError saying what to fix."""
        ...

    def routes(self, inbox: InboxProcessor) -> list[Route]:
        """The web routes this channel serves, handing what arrives to `inbox`."""
        ...

    async def start(self, inbox: InboxProcessor, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        """Start receiving (the web server already runs): set webhooks, start polling; the tasks started."""
        ...

    def alive(self) -> bool:
        """Whether the channel still receives (for /healthz)."""
        ...

    async def close(self) -> None:
        ...
