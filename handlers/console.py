"""The local console channel: the same dialog in a terminal, with no token and no network.

Type text as a child would, a number to press a button of the last message, /commands as in
Telegram, or `quit`. What the operator chat would receive is printed too, marked as such.
"""
from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

from bot.app import App
from bot.conversation import Child
from dialogs.model import EventKind, Incoming
from handlers.telegram.cards import card_text

CHANNEL = "console"
CONSOLE_CHILD = "console-child"


class ConsoleSender:
    """Prints outbox items instead of sending them; remembers the last buttons for numbered input."""

    def __init__(self, app: App, out: TextIO) -> None:
        self.app, self.out = app, out
        self.buttons: list[str] = []

    async def send(self, item: Any, limits: Any) -> dict | None:
        payload, print_ = item.payload, self._print
        if item.target != "child":
            await self._staff(item)
        elif item.kind in ("say", "staff_text"):
            print_(payload["text"])
            rows = payload.get("buttons") or []
            if rows:
                self.buttons = [data for row in rows for _, data in row]
                labels = [label for row in rows for label, _ in row]
                print_("  " + "   ".join(f"[{n}] {label}" for n, label in enumerate(labels, 1)))
        elif item.kind == "delete_messages":
            print_("(Telegram would now clear this chat from the child's screen.)")
        print_("")
        return None

    async def _staff(self, item: Any) -> None:
        engine, lang = self.app.engine, self.app.engine.default_language
        if item.kind == "case_card":
            async with self.app.db.transaction() as tx:
                case = await tx.cases.get(item.payload["case_id"])
            if case is not None:
                self._print("─── operator chat would receive a new case topic ───")
                self._print("".join(card_text(engine, lang, case, "—")))
                self._print("────────────────────────────────────────────────────")
        elif item.kind in ("notice", "general") and item.payload.get("key"):
            self._print(f"[operator chat] {engine.say(lang, item.payload['key'], **item.payload.get('slots', {}))}")
        elif item.kind == "relay":
            self._print("[operator chat] the child's message was relayed to their case topic")

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def event(self, line: str) -> Incoming:
        line = line.strip()
        if line.startswith("/"):
            return Incoming(EventKind.COMMAND, text=line[1:].split()[0].lower() if len(line) > 1 else "")
        if line.isdigit() and 1 <= int(line) <= len(self.buttons):
            return Incoming(EventKind.BUTTON, text=self.buttons[int(line) - 1])
        return Incoming(EventKind.TEXT, text=line)


async def run_console(app: App, lines: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    """Read lines until `quit` or end of input; answer each as the bot would."""
    sender = ConsoleSender(app, out)
    app.senders[CHANNEL] = sender
    child = Child(CHANNEL, CONSOLE_CHILD, {"console": True})
    print("Oberih console — type as a child would; a number presses a button; /start to begin; quit to leave.",
          file=out, flush=True)
    first = "/start"
    while True:
        line = first or await asyncio.to_thread(lines.readline)
        first = None
        if not line or line.strip().lower() in ("quit", "exit()"):
            return
        if not line.strip():
            continue
        async with app.db.transaction() as tx:
            await app.conversations.handle(tx, child, sender.event(line))
        app.outbox.wake.set()
        while await app.worker.run_once():
            pass
