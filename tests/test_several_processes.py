"""Issue 18, item 3: several real bot processes (`run_bot.py`, webhook mode) on one PostgreSQL database
behind a round-robin proxy, killed with SIGKILL at random and started again while children and staff
play whole cases. Every card, reply and relayed message is counted at the fake Bot API: none may be
lost; a duplicate is possible only inside the documented window (a send the platform accepted just
before its process died, bot/delivery/worker.py), and each is counted and printed (`pytest -s`).
The long run is `python -m bench --chaos` (bench/README.md)."""
from __future__ import annotations

import asyncio

import pytest

from dialogs.engine import Engine
from dialogs.validate import load_content
from tests.cluster import BotCluster, fresh_postgres
from tests.cluster_cases import keep_playing, tally
from tests.resilience_support import ScriptedTelegram
from tests.support import TEST_CONTENT, TOKEN, staff_world

PLAYERS = 3  # children at once, each playing case after case while the processes are killed
PROCESSES = 3
KILLS = 6
WAIT = 30.0  # for any one answer: a lease of a killed process (60 s) must not be waited out


@pytest.fixture
async def postgres_url():
    async with fresh_postgres() as (url, why):
        if url is None:
            pytest.skip(why)
        yield url


async def test_three_processes_killed_at_random_lose_nothing(postgres_url, tmp_path):
    engine = Engine(load_content(TEST_CONTENT), "UA", "en")
    async with ScriptedTelegram(token=TOKEN) as tg:
        staff_world(tg)
        async with BotCluster(tg, postgres_url, tmp_path, size=PROCESSES) as cluster:
            stop, done = asyncio.Event(), asyncio.Event()
            playing = asyncio.create_task(keep_playing(tg, engine, PLAYERS, done, wait=WAIT))
            await cluster.chaos(stop, pause=(0.5, 2.5), limit=KILLS)
            done.set()
            cases = await playing
            counts = tally(tg, engine, cases)
            print(f"\n{PROCESSES} processes, {cluster.kills} kills, {len(cases)} cases: {counts.line()}; "
                  f"webhook posts made again: {cluster.redelivered}")
            unfinished = [(case.tag, case.error) for case in cases if not case.done]
            assert not unfinished, f"{unfinished}\n{cluster.log()[-4000:]}"
            assert cluster.kills == KILLS
            assert counts.total_lost == 0, counts.line()
            # Each kill can repeat at most the sends its process had in flight (a handful here).
            assert counts.total_duplicated <= 2 * cluster.kills, counts.line()
