"""Simulated children: each walks the script, acting again once the bot's whole answer has arrived.

Two ways to load the bot:

* flat out (closed loop): every child acts the moment its answer is complete, so `children`
  updates are always in flight and the bot runs as fast as it can;
* paced (open loop): updates are injected at a fixed rate, each by the child that has waited
  longest for its turn; the bot's latency is then measured at a known load.

A child that finishes the script leaves and a new child (a new Telegram user) takes its place.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from dataclasses import dataclass

from bench.fake import BenchTelegram, clock
from bench.script import Action
from tests.fakes.telegram_api import StoredMessage


@dataclass(slots=True)
class SimChild:
    user_id: int
    index: int = 0  # the next action of the script
    waiting: int = 0  # messages of the bot's answer still to come
    asked_at: float = 0.0  # when the fake made the child's newest update available to getUpdates


class ScriptError(RuntimeError):
    """The bot's answer does not let the child go on (the script and the bot disagree)."""


class Children:
    def __init__(self, tg: BenchTelegram, script: list[Action], first_user_id: int, lang: str = "en") -> None:
        self.tg, self.script, self.lang = tg, script, lang
        self._ids = itertools.count(first_user_id)
        self.active: dict[int, SimChild] = {}
        self.ready: deque[SimChild] = deque()
        self.wake = asyncio.Event()  # a child became ready (paced mode)
        self.answered = asyncio.Event()  # a child's answer completed
        self.flat_out = False
        self.stop_at: int | None = None  # a child stops (stays idle) before this action index
        self.replace = True  # a finished child is replaced by a new one
        self.reports_done = 0
        self.actions = 0
        self.unexpected = 0  # bot messages to a child that are not the expected answer
        self.unexpected_examples: list[str] = []
        self.samples: list[tuple[float, float]] = []  # (answer arrived, latency) per answered step
        self.errors: list[str] = []
        tg.listener = self._on_message

    # -- children ----------------------------------------------------------------------------------

    def add(self) -> SimChild:
        child = SimChild(next(self._ids))
        self.tg.add_user(child.user_id, first_name="Kid", language_code=self.lang)
        self.active[child.user_id] = child
        self._ready(child)
        return child

    @property
    def busy(self) -> int:
        """Children whose answer has not completely arrived."""
        return sum(1 for child in self.active.values() if child.waiting > 0)

    def _ready(self, child: SimChild) -> None:
        self.answered.set()
        if self.stop_at is not None and child.index >= self.stop_at:
            return  # idle from now on
        if child.index >= len(self.script):
            self.active.pop(child.user_id, None)
            self.reports_done += 1
            if self.replace:
                self.add()
            return
        if self.flat_out:
            self.act(child)
        else:
            self.ready.append(child)
            self.wake.set()

    def act(self, child: SimChild) -> None:
        action = self.script[child.index]
        if action.kind == "text":
            self.tg.user_sends_text(child.user_id, action.value)
        else:
            message = self._with_button(child, action.value)
            self.tg.user_presses_button(child.user_id, message, text=action.value)
        child.asked_at = self.tg.pushed_at[child.user_id]
        child.waiting = action.answers
        child.index += 1
        self.actions += 1

    def _with_button(self, child: SimChild, label: str) -> StoredMessage:
        for message in reversed(self.tg.sent_to(child.user_id)):
            if any(text == label for text, _ in self.tg.inline_buttons(message)):
                return message
        raise ScriptError(f"no button {label!r} in the bot's messages to the child")

    def _on_message(self, chat_id: int, message: StoredMessage, arrived: float) -> None:
        child = self.active.get(chat_id)
        if child is None:
            return
        action = self.script[child.index - 1] if child.index else None
        if action is None or child.waiting <= 0 or not action.expect[-child.waiting].fullmatch(message.text or ""):
            self.unexpected += 1
            if len(self.unexpected_examples) < 3:
                self.unexpected_examples.append((message.text or message.kind)[:60])
            return
        if child.waiting == action.answers:  # the first message of the answer: the step is answered
            self.samples.append((arrived, arrived - child.asked_at))
        child.waiting -= 1
        if child.waiting == 0:
            # Not from inside the fake's request handler: the bot gets its HTTP answer first.
            asyncio.get_running_loop().call_soon(self._ready_safely, child)

    def _ready_safely(self, child: SimChild) -> None:
        try:
            self._ready(child)
        except ScriptError as error:
            self.errors.append(str(error))
            self.active.pop(child.user_id, None)

    # -- load --------------------------------------------------------------------------------------

    def start_flat_out(self, children: int) -> None:
        self.flat_out = True
        for _ in range(children):
            self.add()

    async def paced(self, children: int, rate: float, stop: asyncio.Event) -> dict[str, int]:
        """Inject `rate` updates a second until `stop` is set. Returns how many ticks found no child
        ready (that update then went out as soon as one was) and how many updates were injected."""
        self.flat_out = False
        for _ in range(children):
            self.add()
        late = injected = 0
        interval = 1.0 / rate
        due = clock()
        while not stop.is_set():
            now = clock()
            if due > now:
                await asyncio.sleep(due - now)
            if not self.ready:
                late += 1
            while not self.ready and not stop.is_set():
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), 0.5)
            if stop.is_set():
                break
            child = self.ready.popleft()
            try:
                self.act(child)
                injected += 1
            except ScriptError as error:
                self.errors.append(str(error))
                self.active.pop(child.user_id, None)
            due += interval
        return {"late_ticks": late, "injected": injected}

    def halt(self) -> None:
        """No child acts any more (answers still arrive and are counted)."""
        self.flat_out = False
        self.stop_at = 0
        self.ready.clear()

    async def drain(self, timeout: float) -> int:
        """Wait until every answer has arrived; returns how many children still wait after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.busy and loop.time() < deadline:
            self.answered.clear()
            try:
                await asyncio.wait_for(self.answered.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                break
        return self.busy

    async def open_idle(self, count: int, stop_at: int, concurrency: int, timeout: float) -> int:
        """`count` new children each take the first `stop_at` steps, then stay idle; returns how many
        did not get there within `timeout`."""
        self.flat_out, self.replace, self.stop_at = True, False, stop_at
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        opened = []
        while len(opened) < count or any(child.index < stop_at or child.waiting for child in opened):
            while len(opened) < count and sum(1 for c in opened if c.index < stop_at or c.waiting) < concurrency:
                opened.append(self.add())
            if loop.time() > deadline:
                break
            self.answered.clear()
            with_timeout = max(0.0, deadline - loop.time())
            try:
                await asyncio.wait_for(self.answered.wait(), with_timeout)
            except TimeoutError:
                pass
        return sum(1 for child in opened if child.index < stop_at or child.waiting)
