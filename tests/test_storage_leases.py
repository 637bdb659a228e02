"""Issue 18, items 1 and 3: leases across processes. A lease of a process that stopped beating is
free; stored updates are claimed with leases, taken in hand in lane order, and marked done only by
their claimant; two inbox processors on one database handle every update once, in order per lane.
Run on SQLite here and on PostgreSQL by tests/test_storage_postgres.py."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from bot import same_host
from bot.heartbeat import Heartbeat, process_owner
from bot.inbox import InboxProcessor
from storage import Database, InboxStatus, Priority, Transaction
from tests import test_storage as shared
from tests.test_storage import FakeClock

clock, database_url, db, privacy = shared.clock, shared.database_url, shared.db, shared.privacy
ROOT = Path(__file__).resolve().parent.parent


async def _item(db: Database, lane: str = "lane-a") -> int:
    async with db.transaction() as tx:
        return await tx.outbox.add("operator", "telegram", lane, "say", {"lane": lane}, Priority.NORMAL)


async def _claim(db: Database, owner: str) -> set[int]:
    async with db.transaction() as tx:
        return {item.id for item in await tx.outbox.claim_ready(tx.now, owner, 10, 60)}


async def _beat(db: Database, *owners: str) -> None:
    async with db.transaction() as tx:
        for owner in owners:
            await tx.heartbeats.beat(owner)


async def test_an_outbox_lease_of_a_process_that_stopped_beating_is_free(db: Database, clock: FakeClock) -> None:
    beating, silent = await _item(db, "lane-a"), await _item(db, "lane-b")
    await _beat(db, "a")
    async with db.transaction() as tx:
        assert await tx.outbox.claim([beating], tx.now, "a", 60) == {beating}
        assert await tx.outbox.claim([silent], tx.now, "no-heartbeat", 60) == {silent}
    clock.advance(seconds=3)
    await _beat(db, "b")
    assert await _claim(db, "b") == set()  # "a" beat 3 s ago: alive; "no-heartbeat" keeps its lease
    clock.advance(seconds=2)  # "a" silent for 5 s: presumed dead
    await _beat(db, "b")
    assert await _claim(db, "b") == {beating}
    async with db.transaction() as tx:
        assert await tx.heartbeats.alive() == ["b"]
        await tx.heartbeats.gone("b")
        assert await tx.heartbeats.alive() == []
    assert await _claim(db, "c") == {beating}  # "b" stopped gracefully: free at once


@pytest.mark.skipif(same_host.pid_space() is None, reason="no /proc of this pid namespace")
async def test_a_starting_process_frees_at_once_what_a_gone_process_of_this_machine_held(db: Database) -> None:
    gone = subprocess.run([sys.executable, "-c", "from bot.heartbeat import process_owner; print(process_owner())"],
                          cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    alive, me = process_owner(), process_owner()  # both of this process: alive
    item = await _item(db)
    await _beat(db, gone, alive, "elsewhere")
    async with db.transaction() as tx:
        assert await tx.outbox.claim([item], tx.now, gone, 60) == {item}
    await Heartbeat(db, me).start()
    async with db.transaction() as tx:
        assert await tx.heartbeats.alive() == sorted([alive, "elsewhere", me])  # what is not known gone beats on
    assert await _claim(db, me) == {item}  # without the 4 s wait


async def test_release_others_frees_every_lease_but_ones_own(db: Database) -> None:
    mine, theirs = await _item(db, "lane-a"), await _item(db, "lane-b")
    async with db.transaction() as tx:
        await tx.outbox.claim([mine], tx.now, "me", 60)
        await tx.outbox.claim([theirs], tx.now, "them", 60)
        await tx.inbox.add("telegram", "1", "chat-1", {"n": 1})
        await tx.inbox.claim("them", 10, 60)
        assert await tx.heartbeats.release_others("me") == 2
        held = {item.id: item.claimed_by for item in await tx.outbox.items()}
        assert held == {mine: "me", theirs: None}
        assert [item.claimed_by for item in await tx.inbox.pending(10)] == [None]


async def test_stored_updates_are_claimed_taken_in_lane_order_and_done_only_by_their_claimant(
        db: Database, clock: FakeClock) -> None:
    async with db.transaction() as tx:
        first = await tx.inbox.add("telegram", "1", "chat-1", {"n": 1})
        second = await tx.inbox.add("telegram", "2", "chat-1", {"n": 2})
        other = await tx.inbox.add("telegram", "3", "chat-2", {"n": 3})
    await _beat(db, "a", "b")
    async with db.transaction() as tx:
        assert [item.id for item in await tx.inbox.claim("a", 1, 60)] == [first]
        assert [item.id for item in await tx.inbox.claim("b", 10, 60)] == [second, other]
        assert await tx.inbox.claim("c", 10, 60) == []  # every row is held by a live process
    async with db.transaction() as tx:
        assert not await tx.inbox.hold(second, "b", 60)  # its lane's earlier update is "a"'s
        assert await tx.inbox.let_go("chat-1", "b") == 1
        assert await tx.inbox.hold(other, "b", 60)
        assert not await tx.inbox.mark_done(other, "a")  # not "a"'s
        assert await tx.inbox.mark_done(other, "b")
        assert not await tx.inbox.mark_done(other, "b")  # done already
    async with db.transaction() as tx:
        assert await tx.inbox.hold(first, "a", 60) and await tx.inbox.mark_done(first, "a")
        assert [item.id for item in await tx.inbox.claim("a", 10, 60)] == [second]
    clock.advance(seconds=5)  # "a" stopped beating: "b" takes what it held
    await _beat(db, "b")
    async with db.transaction() as tx:
        assert [item.id for item in await tx.inbox.claim("b", 10, 60)] == [second]
        assert not await tx.inbox.fail(second, "Boom", 1, owner="a")  # a failure is counted by the claimant only
        assert await tx.inbox.fail(second, "Boom", 1, owner="b")
        assert (await tx.inbox.get(second)).status == InboxStatus.PARKED


async def test_two_processes_handle_every_stored_update_once_in_lane_order(database_url: str, privacy: Any,
                                                                        clock: FakeClock) -> None:
    lanes, per_lane = 12, 8
    handled: dict[str, list[int]] = defaultdict(list)

    async def handle(tx: Transaction, update: dict[str, Any]) -> None:
        handled[update["lane"]].append(update["n"])
        await asyncio.sleep(0)  # the other process gets its turn in the middle of a transaction

    first, second = Database(database_url, privacy, clock=clock), Database(database_url, privacy, clock=clock)
    await first.start()
    await second.start()
    try:
        async with first.transaction() as tx:
            for n in range(per_lane):
                for lane in range(lanes):
                    await tx.inbox.add("telegram", f"{lane}-{n}", f"lane-{lane}", {"lane": f"lane-{lane}", "n": n})
        processors = [InboxProcessor(database, {"telegram": handle}, 5, owner=owner)
                      for database, owner in ((first, "one"), (second, "two"))]
        for _ in range(4 * per_lane):
            await asyncio.gather(*(processor.run_once() for processor in processors))
            async with first.transaction() as tx:
                if not await tx.inbox.depth():
                    break
        async with first.transaction() as tx:
            assert await tx.inbox.depth() == 0
    finally:
        await first.close()
        await second.close()
    assert {lane: numbers for lane, numbers in handled.items()} == {
        f"lane-{lane}": list(range(per_lane)) for lane in range(lanes)}  # each once, in order
