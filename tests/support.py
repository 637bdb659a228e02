"""Running the real bot against the fake Bot API server, and playing a child or a staff member."""
from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, AsyncIterator

from app.build import Service, build
from app.run import serve
from bot.settings import Settings, load_settings
from tests.fakes.telegram_api import FakeTelegram, StoredMessage

# The tests' own small, fixed content (tests/content/README.md): admins may change content/ freely.
TEST_CONTENT = Path(__file__).resolve().parent / "content"
TOKEN = "123456:TEST-TOKEN"
OPERATOR = -1001000000001
POLICE = -1001000000002
ADMIN = 700001


def bot_settings(tmp_path: Path, tg: FakeTelegram, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        _env_file=None, telegram_bot_token=TOKEN, telegram_api_url=tg.base_url, operator_chat_id=OPERATOR,
        police_chat_id=POLICE, admin_ids=str(ADMIN), data_dir=tmp_path, web_port=0,
        database_url=f"sqlite:///{tmp_path / 'oberih.db'}", default_language="en", content_dir=TEST_CONTENT,
        rate_global_per_second=1000, rate_chat_per_second=1000, rate_group_per_minute=100000,
    )
    values.update(overrides)
    return load_settings(**values)


def staff_world(tg: FakeTelegram) -> None:
    """The operator and police forum supergroups with the bot as an admin that manages topics."""
    tg.add_group(OPERATOR, "Operators", is_forum=True)
    tg.add_group(POLICE, "Police", is_forum=True)
    tg.add_member(OPERATOR, ADMIN, "administrator")


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, clock: Any = None) -> AsyncIterator[Service]:
    app = await build(settings, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, stop))
    try:
        await _wait_started(app, task)
        yield app
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await app.close()


async def _wait_started(app: Service, task: asyncio.Task) -> None:
    for _ in range(500):
        if task.done():
            task.result()  # raises the start-up error
        if app.runner is not None and app.runner.addresses:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the bot did not start")


async def settled(app: Service, tg: FakeTelegram, timeout: float = 15.0) -> None:
    """Wait until every update was fetched and handled and nothing waits in the outbox."""
    newest = max((update["update_id"] for update in tg.updates), default=None)

    async def quiet() -> bool:
        async with app.db.transaction() as tx:
            stored = await tx.inbox.last_external_id("telegram")
            busy = await tx.inbox.depth() or await tx.outbox.depth()
        done = newest is None or (stored is not None and int(stored) >= newest)
        return done and not busy and not app.db.calls_running

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await quiet():
        if loop.time() > deadline:
            raise TimeoutError("the bot did not settle")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tg._changed.wait(), 0.05)


class Child:
    """A child on a phone: types, presses buttons by what they say, reads the bot's messages."""

    def __init__(self, app: Service, tg: FakeTelegram, user_id: int, lang: str = "en", first_name: str = "Marta") -> None:
        self.app, self.tg, self.user_id, self.lang = app, tg, user_id, lang
        tg.add_user(user_id, first_name=first_name, username=f"kid{user_id}", language_code=lang)

    def label(self, key: str) -> str:
        return self.app.engine.say(self.lang, key)

    @property
    def inbox(self) -> list[StoredMessage]:
        return self.tg.sent_to(self.user_id)

    @property
    def last(self) -> StoredMessage:
        return self.inbox[-1]

    def texts(self) -> list[str]:
        return [m.text or m.caption or "" for m in self.inbox]

    async def send(self, text: str) -> StoredMessage:
        self.tg.user_sends_text(self.user_id, text)
        await settled(self.app, self.tg)
        return self.last

    async def send_photo(self, **kwargs: Any) -> StoredMessage:
        self.tg.user_sends_photo(self.user_id, **kwargs)
        await settled(self.app, self.tg)
        return self.last

    async def press(self, key: str, message: StoredMessage | None = None) -> StoredMessage:
        """Press the button labelled with the text of `key` on the newest message that has it."""
        label = self.label(key)
        for candidate in ([message] if message else reversed(self.inbox)):
            if any(text == label for text, _ in FakeTelegram.inline_buttons(candidate)):
                self.tg.user_presses_button(self.user_id, candidate, text=label)
                await settled(self.app, self.tg)
                return self.last
        raise AssertionError(f"no button {label!r}; last messages: {self.texts()[-3:]}")


async def report(child: Child, what: str = "They post mean comments under my photos every day.",
                 category: str = "category.bullying", consent: str = "consent.counsellor",
                 reply: str = "reply.yes", before_summary: Any = None) -> StoredMessage:
    """The whole report flow with typical answers; returns the bot's confirmation. `before_summary`:
    awaited at the screenshots step (e.g. to send some)."""
    await child.send("/start")
    await child.press("menu.report")
    await child.press(category)
    await child.send(what)
    if child.last.text == child.label("crisis.text").split("\n")[0] or child.label("crisis.continue") in [
            label for label, _ in FakeTelegram.inline_buttons(child.last)]:
        await child.press("crisis.continue")  # words of danger in the story: the story is kept, the report goes on
    await child.press("platform.instagram")
    await child.press("when.week")
    await child.press("answer.yes")
    await child.press("who.known")
    await child.press("who.peer")
    await child.press("age.middle")
    if category in ("category.sextortion", "category.intimate_images", "category.grooming"):
        await child.press("common.continue")
    else:
        if before_summary is not None:
            await before_summary()
        await child.press("screenshots.done")
    await child.press("summary.correct")
    await child.press(consent)
    return await child.press(reply)


class Staff:
    """A member of the operator or police chat."""

    def __init__(self, app: Service, tg: FakeTelegram, user_id: int, name: str, chat: int = OPERATOR) -> None:
        self.app, self.tg, self.user_id, self.name, self.chat = app, tg, user_id, name, chat
        tg.add_user(user_id, first_name=name, username=name.lower(), language_code="en")
        tg.add_member(chat, user_id, "member")

    async def write(self, text: str, thread_id: int | None = None, reply_to: int | None = None) -> StoredMessage:
        sent = self.tg.user_sends_text(self.user_id, text, chat_id=self.chat, thread_id=thread_id, reply_to=reply_to)
        await settled(self.app, self.tg)
        return sent

    async def press(self, message: StoredMessage, key: str) -> None:
        label = self.app.engine.say("en", key)
        self.tg.user_presses_button(self.user_id, self.tg.message(message.chat_id, message.message_id), text=label)
        await settled(self.app, self.tg)


async def grant(admin: Staff, member: Staff, role: str) -> None:
    """The admin replies to the member's message with /grant ROLE."""
    hello = await member.write("Hello, I'm new here")
    await admin.write(f"/grant {role} {member.name}", reply_to=hello.message_id)


def card_of(tg: FakeTelegram, chat: int = OPERATOR) -> StoredMessage:
    """The newest case card (the bot's message with case buttons, or the first in its topic)."""
    topic = tg.topics(chat)[-1]
    return next(m for m in tg.messages_in(chat, topic.thread_id) if m.from_bot)


def clock_at(moment: datetime) -> Any:
    """A clock that starts at `moment` and runs at real speed (retries and leases still move on)."""
    started = time.monotonic()
    return lambda: moment + timedelta(seconds=time.monotonic() - started)
