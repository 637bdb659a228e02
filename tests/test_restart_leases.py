"""Issue 18, item 1: after `kill -9` and a restart, a waiting child gets their next answer at once.

The bot is a real process (`python run_bot.py`, long polling) against the fake Bot API. It is killed
while a message to the child is in flight (the fake holds the request): that item is leased to the
dead process. Before heartbeats, the restarted bot waited for the whole 60-second lease; now the lease
of a process that stopped beating is free: on SQLite released at start, on PostgreSQL (a fresh
database on the local server, skipped if there is none) at start too, the dead process being of this
machine (bot/same_host.py; elsewhere once its last beat is 4 s old). The seconds from the restart to
the answer are printed (`pytest -s`); the assertion only waits, generously, for the answer.
"""
from __future__ import annotations

import secrets
import time

import pytest
from cryptography.fernet import Fernet

from dialogs.engine import Engine
from dialogs.validate import load_content
from tests.cluster import fresh_postgres
from tests.resilience_support import Phone, ScriptedTelegram, received
from tests.support import TEST_CONTENT, TOKEN, staff_world
from tests.test_crash_recovery import BotProcess

CHILD = 651
LEASE_SECONDS = 60.0  # the delivery worker's lease: the old wait after a kill
WAIT = 40.0  # generous, and still well under a lease


@pytest.fixture
async def tg():
    async with ScriptedTelegram(token=TOKEN) as fake:
        staff_world(fake)
        yield fake


@pytest.fixture
def engine() -> Engine:
    return Engine(load_content(TEST_CONTENT), "UA", "en")


@pytest.fixture(params=["sqlite", "postgresql"])
async def bot(request, tmp_path, tg):
    process = BotProcess(tmp_path, tg)
    try:
        if request.param == "sqlite":
            yield process
            return
        async with fresh_postgres() as (url, why):
            if url is None:
                pytest.skip(why)
            process.env.update(DATABASE_URL=url, DATA_KEY=Fernet.generate_key().decode(),
                               ID_PEPPER=secrets.token_urlsafe(32))
            process.postgres = True
            yield process
    finally:
        await process.reap()


async def test_a_child_waiting_on_a_killed_process_is_answered_right_after_the_restart(bot, tg, engine):
    on_postgres = getattr(bot, "postgres", False)
    await bot.start()
    child = Phone(tg, engine, CHILD)
    child.send("/start")
    await child.press("menu.tips")

    # The answer is on its way (leased, its request in flight) when the process is killed.
    tg.hold("in flight", "sendMessage", chat_id=CHILD)
    await tg.wait_for(lambda t: t.held_by("in flight") >= 1, WAIT, "the answer in flight")
    if not on_postgres:  # (the SQLite file can be read beside the process)
        leased = bot.query("SELECT claimed_by FROM outbox WHERE status = 'pending' AND claimed_by IS NOT NULL")
        assert leased, "the answer in flight is leased to the process"
    await bot.kill()
    tg.release("in flight")  # the dead process's request: never carried out
    child.send("Are you there?")  # the child writes again while the bot is down

    began = time.monotonic()
    await bot.start()
    started = time.monotonic()
    await child.expect_key("tips.menu", timeout=WAIT)
    answered = time.monotonic()
    print(f"\n{'PostgreSQL' if on_postgres else 'SQLite'}, after kill -9: the bot started in {started - began:.2f} s, "
          f"the waiting answer came {answered - started:.2f} s later ({answered - began:.2f} s from the restart)")
    if not on_postgres:
        await bot.drained()
    code, _ = await bot.terminate()
    assert code == 0
    assert received(tg, CHILD)[engine.say("en", "tips.menu")] == 1
