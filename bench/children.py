"""Simulated children: each walks the script, acting again once the bot's whole answer has arrived.

Two ways to load the bot:

* flat out (closed loop): every child acts the moment its answer is complete, so `children`
  updates are always in flight and the bot runs as fast as it can;
* paced (open loop): updates are injected at a fixed rate, each by the child that has waited
  longest for its turn; the bot's latency is then measured at a known load.

A child that finishes the script leaves and a new child (a new Telegram user) takes its place.
With `spread(positions=len(script))` the population is first spread over the report: child i walks
to step i mod len(script), so the mix of steps measured is the mix of whole reports and not only
their first, heavier steps (/start and "Tell what happened" answer with two messages each).
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

PAUSED, FLAT, PACED = "paused", "flat", "paced"


@dataclass(slots=True)
class SimChild:
    user_id: int
    index: int = 0  # the next action of the script
    waiting: int = 0  # messages of the bot's answer still to come
    asked_at: float = 0.0  # when the fake made the child's newest update available to getUpdates
    stop_at: int | None = None  # stays idle once it reaches this action index
    settling: bool = False  # its answer is complete and `_ready` is scheduled but has not run yet


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
        self.mode = PAUSED
        self.replace = True  # a finished child is replaced by a new one
        self.reports_done = 0
        self.actions = 0
        self.unexpected = 0  # bot messages to a child that are not the expected answer
        self.unexpected_examples: list[str] = []
        self.errors: list[str] = []
        self.samples: list[tuple[float, float]] = []  # (update made available, answer arrived) per step
        tg.listener = self._on_message

    # -- children ----------------------------------------------------------------------------------

    def add(self, stop_at: int | None = None) -> SimChild:
        child = SimChild(next(self._ids), stop_at=stop_at)
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
        if child.index >= len(self.script):
            self.active.pop(child.user_id, None)
            self.reports_done += 1
            if self.replace:
                self.add()
            return
        if child.stop_at is not None and child.index >= child.stop_at:
            return  # idle until released
        if self.mode == FLAT:
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

    def _act_safely(self, child: SimChild) -> None:
        try:
            self.act(child)
        except ScriptError as error:
            self.errors.append(str(error))
            self.active.pop(child.user_id, None)

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
            self.samples.append((child.asked_at, arrived))
        child.waiting -= 1
        if child.waiting == 0:
            # Not from inside the fake's request handler: the bot gets its HTTP answer first.
            child.settling = True
            asyncio.get_running_loop().call_soon(self._ready_safely, child)

    def _ready_safely(self, child: SimChild) -> None:
        child.settling = False
        try:
            self._ready(child)
        except ScriptError as error:
            self.errors.append(str(error))
            self.active.pop(child.user_id, None)

    # -- load --------------------------------------------------------------------------------------

    async def spread(self, children: int, timeout: float, positions: int | None = None) -> int:
        """Add `children` children; child i walks flat out to step i mod `positions` (default: every
        step of the script) and waits there. Returns how many did not get there within `timeout`."""
        steps = positions or len(self.script)
        return await self._walk([self._new_stopped(i % steps) for i in range(children)], children, timeout)

    def _new_stopped(self, stop_at: int) -> SimChild:
        self.mode = FLAT
        return self.add(stop_at=stop_at)

    async def open_idle(self, count: int, stop_at: int, concurrency: int, timeout: float) -> int:
        """`count` new children each take the first `stop_at` steps, then stay idle (at most
        `concurrency` on their way at once). Returns how many did not get there within `timeout`."""
        self.replace = False
        return await self._walk([], concurrency, timeout, more=(count, stop_at))

    async def _walk(self, walking: list[SimChild], concurrency: int, timeout: float,
                    more: tuple[int, int] = (0, 0)) -> int:
        to_add, stop_at = more

        def moving(child: SimChild) -> bool:
            return child.user_id in self.active and (
                child.waiting > 0 or child.settling or child.index < (child.stop_at or 0))

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        on_the_way = sum(1 for child in walking if moving(child))
        while True:
            while to_add and on_the_way < concurrency:
                walking.append(self._new_stopped(stop_at))
                to_add -= 1
            on_the_way = sum(1 for child in walking if moving(child))
            if (not on_the_way and not to_add) or loop.time() > deadline:
                break
            self.answered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.answered.wait(), max(0.0, deadline - loop.time()))
        self.mode = PAUSED
        return on_the_way + to_add

    async def redo_first_step(self, child: SimChild, timeout: float = 30) -> int:
        """The child takes the script's first step again (e.g. /start) and waits for the whole answer."""
        child.index, child.stop_at = 0, 1
        self.mode = FLAT
        self.act(child)
        return await self._walk([child], 1, timeout)

    def release(self) -> None:
        """Children waiting at their spread position may go on; they queue as ready."""
        self.mode = PAUSED
        for child in list(self.active.values()):
            if child.stop_at is not None:
                child.stop_at = None
                if not child.waiting and not child.settling:  # a settling child readies itself
                    self._ready(child)

    def start_flat_out(self) -> None:
        self.mode = FLAT
        while self.ready:
            self._act_safely(self.ready.popleft())

    async def paced(self, rate: float, stop: asyncio.Event) -> dict[str, int]:
        """Inject `rate` updates a second until `stop` is set, each from the child that has been
        ready longest. Returns how many ticks found no child ready (that update then went out as
        soon as one was) and how many updates were injected."""
        self.mode = PACED
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
            self._act_safely(self.ready.popleft())
            injected += 1
            due += interval
        return {"late_ticks": late, "injected": injected}

    def pause(self) -> None:
        """No child acts any more; answers still arrive (and are counted), children queue as ready."""
        self.mode = PAUSED

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
