"""Helpers for the "nothing is lost" tests: a fake Telegram that refuses chosen calls, a child on a phone
who waits only for their own messages, and counts of what each chat really received."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter
from collections.abc import Callable
from typing import Any

from dialogs.engine import Engine
from tests.fakes.telegram_api import ApiError, FakeTelegram, StoredMessage

WAIT = 30.0  # generous: under injected faults a message may wait for a few retries (1 s, 2 s, 4 s…)

Rule = Callable[[str, dict[str, Any]], bool]


class ScriptedTelegram(FakeTelegram):
    """The fake Bot API server, plus standing refusals: while a rule holds, matching calls answer
    500 without being carried out (Telegram never saw them), until `allow(name)` lifts the rule."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rules: dict[str, Rule] = {}
        self.refused: list[tuple[str, str, dict[str, Any]]] = []  # (rule name, method, params)
        self._once: tuple[float, int, tuple[Any, ...], frozenset[str]] | None = None
        self._faulted: set[str] = set()
        self._params: dict[str, Any] = {}
        self.holds: dict[str, tuple[Rule, asyncio.Event]] = {}
        self.held: list[tuple[str, str, dict[str, Any]]] = []  # (hold name, method, params): calls caught

    def fail_once_each(self, rate: float, seed: int, codes: tuple[Any, ...] = (429, 500, "drop"),
                       methods: tuple[str, ...] = ()) -> None:
        """Like `set_fault_rate`, but decided per request content rather than per arrival: a share
        `rate` of the distinct requests (same method, chat, thread and text) fails on its first try
        only, with one of `codes` (429 carries retry_after 1; "drop" closes the connection). Which
        ones fail is fixed by the seed whatever the timing, and no message fails twice in a row, so a
        test never waits for long back-offs. `rate=0` switches it off."""
        self._once = (rate, seed, tuple(codes), frozenset(m.lower() for m in methods)) if rate else None

    async def _read_params(self, request: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        params, uploads = await super()._read_params(request)
        method = request.match_info.get("method", "")
        for name, (rule, released) in list(self.holds.items()):
            if rule(method, params):  # kept waiting (a send in flight), then refused: never carried out
                self.held.append((name, method, params))
                self._bump()
                await released.wait()
                self.refused.append((name, method, params))
                params = {**params, "__refused__": True}
        self._params = params  # read by _next_fault, which _handle calls with no await in between
        return params, uploads

    def hold(self, name: str, method: str, **params: Any) -> None:
        """Keep matching calls waiting, unanswered, until `release(name)`; then refuse them (500):
        a send in flight that Telegram never carried out."""
        def rule(called: str, given: dict[str, Any]) -> bool:
            return called.lower() == method.lower() and all(_same(given.get(k), v) for k, v in params.items())
        self.holds[name] = (rule, asyncio.Event())

    def release(self, name: str) -> None:
        self.holds.pop(name)[1].set()

    def held_by(self, name: str) -> int:
        return sum(1 for hold, _, _ in self.held if hold == name)

    def _next_fault(self, method: str) -> tuple[Any, ...] | None:
        p = self._params
        key = method + "|" + "|".join(str(p.get(name)) for name in (
            "chat_id", "message_thread_id", "message_id", "callback_query_id", "name", "text", "from_chat_id"))
        scripted = super()._next_fault(method)
        if scripted is not None:
            self._faulted.add(key)  # this request has had its fault: the random ones pass it by
            return scripted
        if self._once is None or key in self._faulted:
            return None
        rate, seed, codes, methods = self._once
        if methods and method.lower() not in methods:
            return None
        draw = int.from_bytes(hashlib.sha256(f"{seed}|{key}".encode()).digest()[:8], "big") / 2**64
        if draw >= rate:
            return None
        self._faulted.add(key)
        code = codes[int(draw / rate * len(codes)) % len(codes)]
        return ("drop",) if code == "drop" else ("fail", code, 1, None)

    def refuse(self, name: str, method: str, **params: Any) -> None:
        """Refuse calls of `method` whose parameters include all of `params` (chat_id compared as int)."""
        def rule(called: str, given: dict[str, Any]) -> bool:
            return called.lower() == method.lower() and all(_same(given.get(k), v) for k, v in params.items())
        self.rules[name] = rule

    def refuse_when(self, name: str, rule: Rule) -> None:
        """Refuse calls for which `rule(method, params)` holds."""
        self.rules[name] = rule

    def allow(self, name: str) -> None:
        self.rules.pop(name, None)
        self._bump()

    def refused_by(self, name: str) -> int:
        return sum(1 for rule, _, _ in self.refused if rule == name)

    def _check_limits(self, method: str, params: dict[str, Any]) -> None:
        if params.get("__refused__"):
            raise ApiError(500, "Internal Server Error")
        for name, rule in list(self.rules.items()):
            if rule(method, params):
                self.refused.append((name, method, params))
                raise ApiError(500, "Internal Server Error")
        super()._check_limits(method, params)

    # -- what the chats hold ----------------------------------------------------------------------

    def ok_calls(self, method: str, **params: Any) -> list[Any]:
        """Calls of `method` that Telegram carried out, whose parameters include `params`."""
        return [c for c in self.calls_of(method) if c.ok and all(_same(c.params.get(k), v) for k, v in params.items())]


def _same(given: Any, wanted: Any) -> bool:
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        with contextlib.suppress(TypeError, ValueError):
            return int(given) == wanted
        return False
    return given == wanted


def texts(messages: list[StoredMessage]) -> list[str]:
    return [m.text or m.caption or "" for m in messages]


def received(tg: FakeTelegram, chat_id: int, thread_id: int | None = None) -> Counter[str]:
    """How many times each text reached the chat (bot messages only)."""
    return Counter(texts(tg.sent_to(chat_id, thread_id)))


class Phone:
    """A child in their private chat, seen only through the fake: types, presses, waits for answers.

    Works against a bot in this process or in a subprocess; never waits for anybody else's messages.
    """

    def __init__(self, tg: FakeTelegram, engine: Engine, user_id: int, lang: str = "en", first_name: str = "Marta") -> None:
        self.tg, self.engine, self.user_id, self.lang = tg, engine, user_id, lang
        self.after = 0  # message id of the child's last action: answers come after it
        tg.add_user(user_id, first_name=first_name, username=f"kid{user_id}", language_code=lang)

    def say(self, key: str, **slots: Any) -> str:
        return self.engine.say(self.lang, key, **slots)

    @property
    def inbox(self) -> list[StoredMessage]:
        return self.tg.sent_to(self.user_id)

    def texts(self) -> list[str]:
        return texts(self.inbox)

    def newer(self) -> list[StoredMessage]:
        return [m for m in self.inbox if m.message_id > self.after]

    def send(self, text: str) -> StoredMessage:
        message = self.tg.user_sends_text(self.user_id, text)
        self.after = message.message_id
        return message

    async def press(self, key: str, timeout: float = WAIT) -> StoredMessage:
        """Wait for a message newer than the last action that has this button, then press it."""
        label = self.say(key)

        def with_button(_: FakeTelegram) -> StoredMessage | None:
            for message in reversed(self.newer()):
                if any(text == label for text, _ in FakeTelegram.inline_buttons(message)):
                    return message
            return None

        message = await self.tg.wait_for(with_button, timeout, what=f"child {self.user_id}: button {key!r}")
        self.tg.user_presses_button(self.user_id, message, text=label)
        self.after = max(m.message_id for m in self.tg.messages_in(self.user_id))
        return message

    async def expect(self, text: str, timeout: float = WAIT) -> StoredMessage:
        """Wait for a message newer than the last action that contains `text`."""
        def found(_: FakeTelegram) -> StoredMessage | None:
            return next((m for m in self.newer() if text in (m.text or m.caption or "")), None)

        return await self.tg.wait_for(found, timeout, what=f"child {self.user_id}: {text[:40]!r}")

    async def expect_key(self, key: str, timeout: float = WAIT, **slots: Any) -> StoredMessage:
        return await self.expect(self.say(key, **slots), timeout)

    async def report(self, what: str, *, urgent_words: bool = False, consent: str = "consent.counsellor",
                     reply: str = "reply.yes", via_help: bool = False, photos: int = 0) -> StoredMessage:
        """The whole report flow; returns the bot's confirmation (report.sent)."""
        await self.tell(what, urgent_words=urgent_words, via_help=via_help, photos=photos)
        return await self.agree(consent, reply)

    async def tell(self, what: str, *, urgent_words: bool = False, via_help: bool = False, photos: int = 0) -> None:
        """The report up to the summary: nothing has left the bot yet."""
        self.send("/help" if via_help else "/start")
        if via_help:  # "Are you safe right now?" "No": the report will be urgent
            await self.press("help.safe_no")
            await self.press("help.tell")
        else:
            await self.press("menu.report")
        await self.press("category.bullying")
        await self.expect_key("report.what")
        self.send(what)
        if urgent_words:  # words of danger in the child's own story stay part of it: the report goes on
            await self.press("crisis.continue")
        await self.press("platform.instagram")
        for key in ("when.week", "answer.yes", "who.known", "who.peer", "age.middle"):
            await self.press(key)
        await self.expect_key("report.screenshots")
        for _ in range(photos):
            self.after = self.tg.user_sends_photo(self.user_id).message_id
            await self.expect_key("screenshots.got")
        await self.press("screenshots.done")
        await self.expect(what[:30])  # the summary

    async def agree(self, consent: str = "consent.counsellor", reply: str = "reply.yes") -> StoredMessage:
        """The summary is right, whom to tell, answer or not: the report is sent."""
        await self.press("summary.correct")
        await self.press(consent)
        await self.press(reply)
        return await self.expect(self.say("report.sent").split("{")[0])


def case_number(confirmation: StoredMessage, numbers: list[str]) -> str:
    """Which of the known case numbers the confirmation names."""
    found = [number for number in numbers if number in (confirmation.text or "")]
    assert len(found) == 1, (confirmation.text, numbers)
    return found[0]


def card_header(engine: Engine, number: str) -> str:
    """The start of a case card's first line after the optional urgent label: 'Case 123456 ·'."""
    return f"{engine.say('en', 'operator.label.case')} {number} ·"


def cards_in(tg: FakeTelegram, chat_id: int, engine: Engine, number: str, thread_id: int | None = None) -> list[StoredMessage]:
    header = card_header(engine, number)
    return [m for m in tg.sent_to(chat_id, thread_id) if header in (m.text or "").split("\n", 1)[0]]


async def drained(app: Any, tg: FakeTelegram, timeout: float = WAIT) -> None:
    """Wait until nothing is pending in the inbox or the outbox (no new updates are expected).

    Unlike `tests.support.settled` this does not compare with the newest update id, which the hourly
    housekeeping may have forgotten after the clock was moved on."""
    async def quiet() -> bool:
        async with app.db.transaction() as tx:
            return not (await tx.inbox.depth() or await tx.outbox.depth())

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await quiet():
        if loop.time() > deadline:
            raise TimeoutError("the bot did not drain its queues")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tg._changed.wait(), 0.05)


async def eventually(check: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    """Poll an async or sync check (e.g. a database query) until it returns something truthy.

    Woken by nothing but time, so used only for state outside the fake (the database)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.05)
