"""The console as a channel: the same dialog in a terminal, with no token and no network.

Type text as a child would, a number to press a button of the last message, /commands as in
Telegram, `!help` for what the operator chat can do, or `quit`. What the staff chats would receive
is printed too, marked as such.
"""
from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

from bot.casework import Casework
from bot.channel import Route
from bot.conversation import Child, ConversationService
from bot.delivery import DeliveryWorker
from bot.inbox import InboxProcessor
from handlers.console.staff import STAFF_PREFIX, on_staff_line
from handlers.console.transport import ConsoleTransport
from storage import ChannelName, Database, Transaction

CONSOLE_CHILD = "console-child"
WELCOME = ("Oberih console — type as a child would; a number presses a button; /start to begin; "
           "!help for the operator chat; quit to leave.")


class ConsoleChannel:
    """Prints instead of sending and reads typed lines (`run_console`) instead of receiving updates,
    so it stores none and serves no web routes."""

    name = ChannelName.CONSOLE

    def __init__(self, transport: ConsoleTransport) -> None:
        self.transport = transport

    async def handle(self, tx: Transaction, update: dict[str, Any]) -> None:
        return None  # typed lines are handled at once, never stored

    async def check(self) -> None:
        return None

    def routes(self, inbox: InboxProcessor) -> list[Route]:
        return []

    async def start(self, inbox: InboxProcessor, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        return []

    def alive(self) -> bool:
        return True

    async def close(self) -> None:
        return None


async def run_console(db: Database, conversations: ConversationService, casework: Casework, worker: DeliveryWorker,
                      transport: ConsoleTransport, lines: TextIO = sys.stdin) -> None:
    """Read lines until `quit` or end of input; answer each as the bot (or the operator chat) would."""
    child = Child(ChannelName.CONSOLE, CONSOLE_CHILD, {"console": True})
    transport.say(WELCOME)
    first: str | None = "/start"
    while True:
        line = first or await asyncio.to_thread(lines.readline)
        first = None
        if not line or line.strip().lower() in ("quit", "exit()"):
            return
        if not line.strip():
            continue
        if line.strip().startswith(STAFF_PREFIX):
            await on_staff_line(db, casework, transport, line.strip()[len(STAFF_PREFIX):])
        else:
            async with db.transaction() as tx:
                await conversations.handle(tx, child, transport.event(line))
        while await worker.run_once():
            pass
