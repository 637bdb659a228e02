"""Inbox deduplication and outbox claiming (lanes, priorities, leases, concurrent workers)."""
from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest

from bot.privacy import Privacy
from storage import Database, InboxStatus, MarkedSent, OutboxStatus, Priority
from tests import test_storage as shared
from tests.test_storage import SECRET, START, FakeClock

# pytest finds fixtures by name in the module: borrow the shared ones.
clock, database_url, db, privacy = shared.clock, shared.database_url, shared.db, shared.privacy


async def test_inbox_dedup_and_lifecycle(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as tx:
        first = await tx.inbox.add("telegram", "1001", "child:k1", {"text": SECRET})
        assert first is not None
        assert await tx.inbox.add("telegram", "1001", "child:k1", {"text": "again"}) is None
        second = await tx.inbox.add("viber", "1001", "child:k2", {"text": "hi"})  # other channel: not a duplicate
        assert second is not None
    async with db.transaction() as tx:
        assert await tx.inbox.add("telegram", "1001", "child:k1", {}) is None  # also across transactions
        assert [(item.id, item.payload) for item in await tx.inbox.pending(10)] == [
            (first, {"text": SECRET}),
            (second, {"text": "hi"}),
        ]
        assert await tx.inbox.depth() == 2
        assert await tx.inbox.last_external_id("telegram") == "1001"
        assert await tx.inbox.last_external_id("console") is None
        assert not await tx.inbox.mark_done(first, "me")  # only by its claimant
        assert [item.id for item in await tx.inbox.claim("me", 1, 60)] == [first]
        assert await tx.inbox.mark_done(first, "me")
        done = await tx.inbox.get(first)
        assert done is not None and (done.status, done.payload, done.done_at) == (InboxStatus.DONE, None, START)
        assert [await tx.inbox.fail(second, "handler error", max_attempts=2) for _ in range(2)] == [False, True]
        parked = await tx.inbox.get(second)
        assert parked is not None and (parked.status, parked.attempts) == (InboxStatus.PARKED, 2)
        assert await tx.inbox.depth() == 0
        assert await tx.inbox.forget_done(START) == 0
        assert await tx.inbox.forget_done(START + timedelta(hours=49)) == 1
        assert await tx.inbox.get(first) is None and await tx.inbox.get(second) is not None


# --- outbox ---------------------------------------------------------------------------------------


async def add_item(db: Database, lane: str, priority: int = Priority.NORMAL, case_id: int | None = None) -> int:
    async with db.transaction() as tx:
        return await tx.outbox.add("operator", "telegram", lane, "say", {"lane": lane}, priority, case_id=case_id)


_workers = itertools.count(1)


async def claim(db: Database, owner: str | None = None, limit: int = 10, lease: float = 30) -> list[int]:
    """Claim as `owner`, by default as a worker of its own (a holder would get its own items again)."""
    owner = owner or f"worker-{next(_workers)}"
    async with db.transaction() as tx:
        return [item.id for item in await tx.outbox.claim_ready(tx.now, owner, limit, lease)]


async def test_outbox_claims_only_the_first_item_of_each_lane(db: Database) -> None:
    a1, a2, b1 = await add_item(db, "a"), await add_item(db, "a"), await add_item(db, "b")
    assert await claim(db, "w1") == [a1, b1]
    assert await claim(db) == []  # a2 waits for a1; claimed items are not handed out twice
    assert await claim(db, "w1") == [a1, b1]  # only to their holder again (it renews the lease)
    async with db.transaction() as tx:
        assert await tx.outbox.mark_sent(a1, "a", {"message_ids": [5]}) == MarkedSent(lane_waits=True)  # a2
        sent = await tx.outbox.get(a1)
    assert sent is not None
    assert (sent.status, sent.result, sent.claimed_by) == (OutboxStatus.SENT, {"message_ids": [5]}, None)
    assert await claim(db) == [a2]


async def test_outbox_priority_then_id_order(db: Database) -> None:
    low = await add_item(db, "l", Priority.LOW)
    normal = await add_item(db, "n")
    urgent = await add_item(db, "u", Priority.URGENT)
    normal2 = await add_item(db, "n2")
    assert await claim(db, limit=3) == [urgent, normal, normal2]
    assert await claim(db) == [low]


async def test_outbox_retry_failure_and_lease(db: Database, clock: FakeClock) -> None:
    first, second = await add_item(db, "a", case_id=7), await add_item(db, "a", case_id=7)
    assert await claim(db, lease=10) == [first]
    async with db.transaction() as tx:
        await tx.outbox.retry_later(first, clock.now + timedelta(seconds=60), "429 Too Many Requests")
        item = await tx.outbox.get(first)
    assert item is not None and (item.attempts, item.claimed_until, item.error) == (1, None, "429 Too Many Requests")
    assert await claim(db) == []  # not due yet, and it still holds its lane
    clock.advance(seconds=61)
    assert await claim(db, lease=10) == [first]
    clock.advance(seconds=11)
    async with db.transaction() as tx:
        assert await tx.outbox.stuck(clock.now) == 1  # the worker died: lease expired
        assert await tx.outbox.stuck(clock.now) == 0
    assert await claim(db, owner="w2") == [first]
    async with db.transaction() as tx:
        await tx.outbox.release(first)
        await tx.outbox.mark_failed(first, "x" * 2000)
        failed = await tx.outbox.get(first)
        assert failed is not None and failed.status == OutboxStatus.FAILED and len(failed.error or "") == 500
        assert [item.id for item in await tx.outbox.items(case_id=7, status="pending")] == [second]
    assert await claim(db) == [second]  # a failed item no longer blocks its lane


async def test_outbox_metrics_cancel_and_purge(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as tx:
        card = await tx.outbox.add("operator", "telegram", "op", "case_card", {"n": 1}, case_id=5)
        child = await tx.outbox.add("child", "telegram", "c:k1", "say", {"t": SECRET}, conversation_key="k1")
        await tx.outbox.add("child", "telegram", "c:k2", "say", {"t": "x"}, conversation_key="k2")
        assert await tx.outbox.oldest_pending_age(clock.now) == 0
    clock.advance(seconds=30)
    async with db.transaction() as tx:
        assert await tx.outbox.depth() == 3
        assert await tx.outbox.oldest_pending_age(clock.now) == 30
        assert await tx.outbox.pending_cards() == [5] and await tx.outbox.pending_cards("police") == []
        assert await tx.outbox.forget_child("k1") == 1
        cancelled = await tx.outbox.get(child)
        assert cancelled is not None and (cancelled.status, cancelled.payload) == (OutboxStatus.CANCELLED, {})
        await tx.outbox.mark_sent(card, (await tx.outbox.get(card)).lane, None)
        assert await tx.outbox.depth() == 1
        assert await tx.outbox.purge_sent(START) == 0
        assert await tx.outbox.purge_sent(clock.now + timedelta(seconds=1)) == 2
        assert [item.conversation_key for item in await tx.outbox.items()] == ["k2"]
        with pytest.raises(ValueError):
            await tx.outbox.add("nobody", "telegram", "x", "say", {})
    async with db.transaction() as tx:
        last = (await tx.outbox.items())[0]
        assert await tx.outbox.mark_sent(last.id, last.lane, None) == MarkedSent(lane_waits=False)
        assert await tx.outbox.oldest_pending_age(clock.now) is None


async def test_concurrent_claimers_never_share_an_item(
    db: Database, database_url: str, privacy: Privacy, clock: FakeClock
) -> None:
    async with db.transaction() as tx:
        for n in range(60):
            await tx.outbox.add("child", "telegram", f"lane{n % 12}", "say", {"n": n}, n % 3)
    other = Database(database_url, privacy, clock=clock)  # a second process on the same database
    await other.start()
    claims: list[tuple[str, int, str]] = []

    async def worker(database: Database, owner: str) -> None:
        idle = 0
        while idle < 3:
            async with database.transaction() as tx:
                items = await tx.outbox.claim_ready(tx.now, owner, 4, 300)
            claims.extend((owner, item.id, item.lane) for item in items)
            for item in items:
                async with database.transaction() as tx:
                    await tx.outbox.mark_sent(item.id, item.lane, None)
            idle = 0 if items else idle + 1
            await asyncio.sleep(0)

    try:
        workers = [worker(database, f"{name}{n}") for n in range(3) for name, database in (("a", db), ("b", other))]
        await asyncio.gather(*workers)
    finally:
        await other.close()
    ids = [item_id for _, item_id, _ in claims]
    assert len(ids) == len(set(ids)) == 60
    for lane in {lane for _, _, lane in claims}:
        in_lane = [item_id for _, item_id, claimed_lane in claims if claimed_lane == lane]
        assert in_lane == sorted(in_lane)  # a lane's items left one at a time, in id order


async def test_outbox_ready_brings_the_address_and_claim_has_one_winner(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.conversations.save("k1", "telegram", {"lang": "uk"}, {"chat_id": 42})
        child = await tx.outbox.add("child", "telegram", "c:k1", "say", {"t": SECRET}, conversation_key="k1")
        orphan = await tx.outbox.add("child", "telegram", "c:k2", "say", {"t": "x"}, conversation_key="k2")
        card = await tx.outbox.add("operator", "telegram", "op", "case_card", {"n": 1}, case_id=5,
                                   conversation_key="k1")
    async with db.transaction() as tx:
        ready = await tx.outbox.ready(tx.now, 10)
        # Only a child's own item carries the child's address; it is read, never written to the outbox.
        assert [(item.id, item.address) for item in ready] == [(child, {"chat_id": 42}), (orphan, None), (card, None)]
        assert all(item.claimed_by is None and item.address is None for item in await tx.outbox.items())
        assert await tx.outbox.claim([child, card], tx.now, "w1", 30) == {child, card}
        assert await tx.outbox.claim([child, orphan], tx.now, "w2", 30) == {orphan}  # child is w1's
        assert await tx.outbox.claim([], tx.now, "w2", 30) == set()
        assert await tx.outbox.ready(tx.now, 10) == []


async def test_outbox_outcomes_touch_only_pending_items(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as tx:
        child = await tx.outbox.add("child", "telegram", "c:k1", "say", {"t": SECRET}, conversation_key="k1")
        other = await tx.outbox.add("child", "telegram", "c:k2", "say", {"t": "x"}, conversation_key="k2")
    assert await claim(db) == [child, other]
    async with db.transaction() as tx:
        assert await tx.outbox.forget_child("k1") == 1  # the child erased their data meanwhile
        later = clock.now + timedelta(seconds=5)
        assert await tx.outbox.mark_sent(child, "c:k1", {"message_ids": [1]}) is None
        assert not await tx.outbox.retry_later(child, later, "timeout")
        assert not await tx.outbox.mark_failed(child, "blocked")
        cancelled = await tx.outbox.get(child)
        assert cancelled is not None
        assert (cancelled.status, cancelled.result, cancelled.attempts, cancelled.error) == (
            OutboxStatus.CANCELLED, None, 0, None)
        assert await tx.outbox.retry_later(other, later, "timeout")
        assert await tx.outbox.mark_failed(other, "blocked")
        assert await tx.outbox.mark_sent(other, "c:k2", None) is None  # failed stays failed
        assert not await tx.outbox.mark_failed(123456, "gone")
        failed = await tx.outbox.get(other)
        assert failed is not None and (failed.status, failed.attempts, failed.result) == (OutboxStatus.FAILED, 2, None)


__all__ = [name for name in list(globals()) if name.startswith("test_")]
