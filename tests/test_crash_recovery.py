"""Issue 5: the bot as a real process (`python run_bot.py`), killed with SIGKILL at chosen moments and
started again on the same database. Every conversation goes on, every undelivered message is sent,
and none twice; SIGTERM stops it gracefully (docs/ARCHITECTURE.md, rule 3)."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.privacy import load_privacy
from bot.settings import load_settings
from dialogs.engine import Engine
from dialogs.validate import load_content
from storage import Database, OutboxStatus
from tests.resilience_support import WAIT, Phone, ScriptedTelegram, cards_in, received
from tests.support import ADMIN, OPERATOR, TEST_CONTENT, TOKEN, staff_world

ROOT = Path(__file__).resolve().parent.parent
CHILD = 650
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0  # SIGTERM: the inbox gets 5 s to finish, the delivery flush 5 s more at most


@pytest.fixture
async def tg():
    async with ScriptedTelegram(token=TOKEN) as fake:
        staff_world(fake)
        yield fake


@pytest.fixture
def engine() -> Engine:
    return Engine(load_content(TEST_CONTENT), "UA", "en")


class BotProcess:
    """`python run_bot.py` against the fake, on a database in tmp_path; restartable, always reaped."""

    def __init__(self, tmp_path: Path, tg: ScriptedTelegram) -> None:
        self.tmp_path, self.tg = tmp_path, tg
        self.db_path = tmp_path / "oberih.db"
        self.proc: asyncio.subprocess.Process | None = None
        self.runs = 0
        ours = ("TELEGRAM_", "VIBER_", "OPERATOR_", "POLICE_", "ADMIN_", "DATABASE_", "DATA_", "ID_PEPPER",
                "RATE_", "WEB_", "DEFAULT_LANGUAGE", "LOG_LEVEL", "KEYS_DIR", "METRICS_TOKEN")
        self.env = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
        self.env.update(
            TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=tg.base_url, OPERATOR_CHAT_ID=str(OPERATOR),
            ADMIN_IDS=str(ADMIN), DATA_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{self.db_path}",
            WEB_PORT="0", DEFAULT_LANGUAGE="en", RATE_GLOBAL_PER_SECOND="1000", RATE_CHAT_PER_SECOND="1000",
            RATE_GROUP_PER_MINUTE="100000", LOG_LEVEL="INFO", PYTHONUNBUFFERED="1", CONTENT_DIR=str(TEST_CONTENT),
        )

    @property
    def log(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.tmp_path.glob("bot-*.log")))

    async def start(self) -> None:
        """Start the process and wait until it polls Telegram (it has checked its chats and started)."""
        assert self.proc is None or self.proc.returncode is not None
        self.runs += 1
        mark = len(self.tg.calls)
        with self._new_log() as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "run_bot.py", cwd=ROOT, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=asyncio.subprocess.STDOUT)
        polling = asyncio.ensure_future(self.tg.wait_for(
            lambda t: any(c.method == "getUpdates" for c in t.calls[mark:]), START_TIMEOUT, "the bot polls"))
        exited = asyncio.ensure_future(self.proc.wait())
        await asyncio.wait([polling, exited], return_when=asyncio.FIRST_COMPLETED)
        for future in (polling, exited):
            future.cancel()
        await asyncio.gather(polling, exited, return_exceptions=True)
        if self.proc.returncode is not None or not polling.done() or polling.cancelled() or polling.exception():
            raise AssertionError(f"the bot did not start (exit {self.proc.returncode}):\n{self.log[-3000:]}")

    def _new_log(self) -> Any:
        return (self.tmp_path / f"bot-{self.runs}.log").open("wb")

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed."""
        assert self.proc is not None and self.proc.returncode is None, self.log[-3000:]
        self.proc.kill()
        await self.proc.wait()

    async def terminate(self) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took)."""
        assert self.proc is not None and self.proc.returncode is None, self.log[-3000:]
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
        return code, time.monotonic() - began

    async def reap(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Plain columns straight from the bot's SQLite file (read-only, beside the running process)."""
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)) as db:
            return db.execute(sql, args).fetchall()

    async def waiting_for_retry(self, kind: str, attempts: int = 1) -> bool:
        """An item of this kind failed, its retry is recorded, and nothing is in flight (claimed)."""
        def check() -> bool:
            rows = self.query("SELECT attempts, claimed_by FROM outbox WHERE status = 'pending' AND kind = ?", kind)
            claimed = self.query("SELECT count(*) FROM outbox WHERE status = 'pending' AND claimed_by IS NOT NULL")
            return any(a >= attempts and c is None for a, c in rows) and claimed[0][0] == 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while not check():  # the database is another process's: nothing to wake us but time
            if loop.time() > deadline:
                raise TimeoutError(f"no {kind} item waiting for its retry:\n{self.log[-3000:]}")
            await asyncio.sleep(0.05)
        return True

    async def drained(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while self.query("SELECT count(*) FROM outbox WHERE status = 'pending'")[0][0] or \
                self.query("SELECT count(*) FROM inbox WHERE status NOT IN ('done')")[0][0]:
            if loop.time() > deadline:
                raise TimeoutError(f"the bot did not drain its queues:\n{self.log[-3000:]}")
            await asyncio.sleep(0.05)

    async def stored(self) -> tuple[list[Any], list[Any]]:
        """Cases and outbox items as the bot stored them (read after the process has stopped)."""
        assert self.proc is None or self.proc.returncode is not None
        keys = load_settings(_env_file=None, data_dir=self.tmp_path).resolved_keys_dir  # where the bot made them
        database = Database(f"sqlite:///{self.db_path}", load_privacy(None, None, keys))
        await database.start()
        try:
            async with database.transaction() as tx:
                items = await tx.outbox.items()
                cases = [await tx.cases.get(i) for i in sorted({item.case_id for item in items if item.case_id})]
        finally:
            await database.close()
        return [case for case in cases if case is not None], items


@pytest.fixture
async def bot(tmp_path, tg):
    process = BotProcess(tmp_path, tg)
    try:
        yield process
    finally:
        await process.reap()


def assert_each_once(counts: Counter[str]) -> None:
    twice = {text[:60]: n for text, n in counts.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"


async def test_a_conversation_killed_mid_dialog_goes_on_after_a_restart(bot, tg, engine):
    await bot.start()
    child = Phone(tg, engine, CHILD)
    child.send("/start")
    await child.press("menu.report")
    await child.press("category.bullying")
    await child.expect_key("report.what")

    # The child answers; the bot stores the answer and queues the next question, but Telegram refuses
    # to take it. The process dies while that question waits for its retry.
    tg.refuse("child", "sendMessage", chat_id=CHILD)
    child.send("They post mean comments under my photos.")
    await tg.wait_for(lambda t: t.refused_by("child") >= 1, WAIT, "the next question refused")
    await bot.waiting_for_retry("say")
    await bot.kill()

    # While the bot is down the child writes again (the platform keeps the update for the bot).
    child.send("Instagram, I think")
    tg.allow("child")
    await bot.start()

    # The question that was never delivered arrives once, then the answer to what was typed meanwhile.
    await child.expect_key("report.where")
    await child.expect_key("report.when")
    for key in ("when.week", "answer.yes", "who.known", "who.peer", "age.middle", "screenshots.done"):
        await child.press(key)
    confirmation = await child.agree()
    await tg.wait_for(lambda t: t.topics(OPERATOR) and cards_in(t, OPERATOR, engine, t.topics(OPERATOR)[0].name[:6]),
                      WAIT, "the card")
    await bot.drained()
    code, _ = await bot.terminate()
    assert code == 0

    counts = received(tg, CHILD)
    assert_each_once(counts)
    assert counts[engine.say("en", "report.where")] == 1 and counts[engine.say("en", "report.when")] == 1
    [case], items = await bot.stored()
    assert case.number in confirmation.text and case.answers["platform"] == "Instagram, I think"
    assert case.answers["what"] == "They post mean comments under my photos."
    assert len(tg.topics(OPERATOR)) == 1 and len(cards_in(tg, OPERATOR, engine, case.number)) == 1
    assert all(item.status == OutboxStatus.SENT for item in items)


async def test_a_consented_report_reaches_the_operator_chat_once_across_kills_mid_delivery(bot, tg, engine):
    await bot.start()
    child = Phone(tg, engine, CHILD)
    await child.tell("They post mean comments under my photos.")

    # 1. The consent is stored and the child told, but the topic cannot be opened: killed mid-retry.
    tg.refuse("topic", "createForumTopic")
    confirmation = await child.agree()
    await tg.wait_for(lambda t: t.refused_by("topic") >= 1, WAIT, "the topic refused")
    await bot.waiting_for_retry("case_card")
    await bot.kill()
    assert tg.topics(OPERATOR) == []

    # 2. After a restart the topic opens, but the card itself is refused: killed mid-retry again.
    tg.allow("topic")
    tg.refuse("card", "sendMessage", chat_id=OPERATOR)
    await bot.start()
    await tg.wait_for(lambda t: t.refused_by("card") >= 1, WAIT, "the card refused")
    await bot.waiting_for_retry("case_card", attempts=2)
    await bot.kill()
    assert len(tg.topics(OPERATOR)) == 1

    # 3. The third process delivers the card into the topic the first attempt opened.
    tg.allow("card")
    await bot.start()
    topic = tg.topics(OPERATOR)[0]
    number = topic.name.split(" · ")[0]
    assert number in confirmation.text
    await tg.wait_for(lambda t: cards_in(t, OPERATOR, engine, number), WAIT, "the card")
    child.send("One more thing: they made a fake account of me")
    await child.expect_key("relay.sent", case_number=number)
    await tg.wait_for(lambda t: any("fake account" in (m.text or "") for m in t.sent_to(OPERATOR)), WAIT, "relay")
    await bot.drained()
    code, _ = await bot.terminate()
    assert code == 0

    assert len(tg.topics(OPERATOR)) == 1 and len(tg.ok_calls("createForumTopic")) == 1
    [card] = cards_in(tg, OPERATOR, engine, number)
    assert card.thread_id == topic.thread_id
    assert len([m for m in tg.sent_to(OPERATOR) if "fake account" in (m.text or "")]) == 1
    counts = received(tg, CHILD)
    assert_each_once(counts)
    assert counts[confirmation.text] == 1  # "your report is sent", once
    [case], items = await bot.stored()
    assert case.operator_topic_id == topic.thread_id and case.operator_card_message_id == card.message_id
    assert all(item.status == OutboxStatus.SENT for item in items)


async def test_sigterm_stops_gracefully_and_a_pending_message_goes_out_after_the_restart(bot, tg, engine):
    await bot.start()
    child = Phone(tg, engine, CHILD)
    child.send("/start")
    await child.expect_key("menu.text")

    # Stopped while an answer to the child waits for its retry: exit 0, quickly, and nothing lost.
    tg.refuse("child", "sendMessage", chat_id=CHILD)
    await child.press("menu.tips")
    await tg.wait_for(lambda t: t.refused_by("child") >= 1, WAIT, "the answer refused")
    code, took = await bot.terminate()
    assert code == 0 and took < STOP_TIMEOUT
    assert '"stopped"' in bot.log

    tg.allow("child")
    await bot.start()
    await child.expect_key("tips.menu")
    await bot.drained()
    code, _ = await bot.terminate()
    assert code == 0
    assert_each_once(received(tg, CHILD))
