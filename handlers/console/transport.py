"""The console's transport: what would be sent, printed - the child's messages with numbered
buttons, the staff chats' messages marked with their chat."""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TextIO

from bot.transport import Address, OutgoingFile, Pace, Rows, StaffFile
from dialogs.model import EventKind, Incoming

OPERATOR_CHAT, POLICE_CHAT = -1, -2  # the staff chats the console plays
TEXT_LIMIT = 4096


class ConsoleTransport:
    """Prints what would be sent; remembers the child's last buttons for numbered input."""

    can_delete = True
    text_limit = TEXT_LIMIT

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.buttons: list[str] = []
        self._ids = itertools.count(1)
        self._topics = itertools.count(1)

    async def send_text(self, to: Address, text: str, buttons: Rows = (), *, protect: bool = False) -> list[int]:
        labels = [button.label for row in buttons for button in row]
        if self._is_child(to):
            self.buttons = [button.payload for row in buttons for button in row]
            self._print(text)
            if labels:
                self._print("  " + "   ".join(f"[{n}] {label}" for n, label in enumerate(labels, 1)))
            self._print("")
        else:
            self._print(f"{self._where(to)}\n{text}" + (f"\n  {' | '.join(labels)}" if labels else "") + "\n")
        return [next(self._ids)]

    async def send_files(self, to: Address, files: Sequence[OutgoingFile], caption: str | None = None, *,
                         protect: bool = False) -> list[int]:
        self._print(f"{self._where(to)} ({len(files)} file(s)) {caption or ''}".rstrip() + "\n")
        return [next(self._ids) for _ in files]

    async def pass_on(self, to: Address, file: StaffFile, caption: str, unavailable: str, pace: Pace) -> list[int]:
        self._print(f"(a file from staff) {caption}\n")
        return [next(self._ids)]

    async def delete_messages(self, to: Address, message_ids: Sequence[int]) -> None:
        self._print("(Telegram would now clear this chat from the child's screen.)\n")

    async def send_picture(self, to: Address, picture: bytes, name: str, caption: str) -> list[int]:
        self._print(f"{self._where(to)} (a picture: {name})\n{caption}\n")
        return [next(self._ids)]

    async def edit_text(self, to: Address, message_id: int, text: str, buttons: Rows = ()) -> None:
        labels = [button.label for row in buttons for button in row]
        self._print(f"{self._where(to)} the card now reads:\n{text}" + (f"\n  {' | '.join(labels)}" if labels else "") + "\n")

    async def open_topic(self, chat: int, name: str) -> int:
        topic = next(self._topics)
        self._print(f"─── {self._chat(chat)} would receive a new case topic: {name} ───")
        return topic

    async def reopen_topic(self, chat: int, topic: int) -> None:
        return None

    async def delete_topic(self, chat: int, topic: int) -> None:
        self._print(f"({self._chat(chat)}: the topic of a purged case is deleted)\n")

    @staticmethod
    def _is_child(to: Address) -> bool:
        return to.chat == "console"

    def _where(self, to: Address) -> str:
        return f"[{self._chat(int(to.chat))}]"

    @staticmethod
    def _chat(chat: int) -> str:
        return {OPERATOR_CHAT: "operator chat", POLICE_CHAT: "police chat"}.get(chat, "a private chat")

    def say(self, text: str) -> None:
        """A line of the console itself (help, refusals), not something the bot would send."""
        self._print(text)

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def event(self, line: str) -> Incoming:
        line = line.strip()
        if line.startswith("/"):
            return Incoming(EventKind.COMMAND, text=line[1:].split()[0].lower() if len(line) > 1 else "")
        if line.isdigit() and 1 <= int(line) <= len(self.buttons):
            return Incoming(EventKind.BUTTON, text=self.buttons[int(line) - 1])
        return Incoming(EventKind.TEXT, text=line)
