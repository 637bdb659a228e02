"""Inbound updates are handled in order and never silently dropped; a burst of cards is summarised."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event

from bot.inbox import InboxProcessor, Received
from bot.metrics import Metrics
from bot.privacy import Privacy
from storage import Database
from tests.support import Child, bot_settings, running_bot, settled


@contextmanager
def counted_commits(db: Database) -> Iterator[list[object]]:
    """The commits made inside the block (a connection each), from SQLAlchemy's commit event."""
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    event.listen(db.sync_engine, "commit", count)
    try:
        yield commits
    finally:
        event.remove(db.sync_engine, "commit", count)


async def test_two_fast_messages_are_answered_in_order_from_fresh_state(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, 1201)
        await child.send("/start")
        await child.press("menu.report")
        await child.press("category.scam")
        tg.user_sends_text(1201, "They took my game account")  # the story…
        tg.user_sends_text(1201, "Roblox")  # …and, a moment later, where
        await settled(app, tg)
        key = app.conversations.privacy.pseudonym("telegram", 1201)
        async with app.db.transaction() as tx:
            answers = (await tx.conversations.get(key)).state["answers"]
        assert answers["what"] == "They took my game account" and answers["platform"] == "Roblox"


async def test_a_failing_update_is_retried_then_parked_visibly(tmp_path, caplog):
    db = Database(f"sqlite:///{tmp_path / 'inbox.db'}", Privacy([Fernet.generate_key().decode()], "p"))
    await db.start()
    calls: list[dict] = []

    async def broken_handler(tx, payload):
        calls.append(payload)
        raise RuntimeError("a bug while handling")

    metrics = Metrics()
    processor = InboxProcessor(db, {"telegram": broken_handler}, max_attempts=3, metrics=metrics)
    try:
        async with db.transaction() as tx:
            await tx.inbox.add("telegram", "1", "lane-a", {"n": 1})
            await tx.inbox.add("telegram", "2", "lane-a", {"n": 2})
        for _ in range(3):
            processor._retry_at.clear()  # skip the back-off wait: the test drives the rounds itself
            await processor.run_once()
        async with db.transaction() as tx:
            first, second = await tx.inbox.get(1), await tx.inbox.get(2)
        assert str(first.status) == "parked" and first.attempts == 3
        assert [c["n"] for c in calls] == [1, 1, 1, 2]  # the lane waited behind its failing update, then moved on
        assert str(second.status) == "pending"
        assert "inbox item parked" in caplog.text and "a bug while handling" not in caplog.text.split("Traceback")[0]
        assert b"oberih_updates_parked_total{channel=\"telegram\"} 1.0" in metrics.render()
    finally:
        await db.close()


async def test_a_burst_beyond_the_group_limit_is_summarised_in_general(tmp_path, tg, caplog):
    caplog.set_level(logging.INFO)
    from app.build import build

    app = await build(bot_settings(tmp_path, tg, rate_group_per_minute=3))
    try:
        async with app.db.transaction() as tx:
            for n in range(5):
                case = await tx.cases.create(number=f"10000{n}", kind="report", channel="telegram", language="en",
                                             country="UA", consent="counsellor", answers={"what": "x"})
                await app.outbox.case_card(tx, case)
        await app.sweeps.digest()
        async with app.db.transaction() as tx:
            general = [item for item in await tx.outbox.items() if item.kind == "general"]
        assert len(general) == 1 and general[0].priority == 0
        assert general[0].payload["key"] == "operator.digest" and general[0].payload["slots"]["count"] == 5
        assert "100004" in general[0].payload["slots"]["numbers"]
    finally:
        await app.close()


async def test_a_new_update_is_handled_at_once_or_stored_to_wait_its_turn(tmp_path, caplog):
    db = Database(f"sqlite:///{tmp_path / 'inbox.db'}", Privacy([Fernet.generate_key().decode()], "p"))
    await db.start()
    handled: list[object] = []
    failing = {"bad"}

    async def handler(tx, event):
        handled.append(event)
        if (event["n"] if isinstance(event, dict) else event) in failing:
            raise RuntimeError("a bug while handling")

    processor = InboxProcessor(db, {"telegram": handler}, max_attempts=3)
    try:
        await processor.receive("telegram", "1", "lane-a", "fine", lambda: {"n": "fine"})
        await processor.receive("telegram", "1", "lane-a", "fine", lambda: {"n": "fine"})  # a redelivery
        await processor.receive("telegram", "2", "lane-b", "bad", lambda: {"n": "bad"})
        await processor.receive("telegram", "3", "lane-b", "next", lambda: {"n": "next"})  # must wait behind 2
        assert handled == ["fine", "bad"]
        async with db.transaction() as tx:
            done, waiting = await tx.inbox.get(1), await tx.inbox.pending(10)
        assert str(done.status) == "done" and done.payload is None  # nothing of the update is kept
        assert [(item.external_id, item.payload) for item in waiting] == [("2", {"n": "bad"}), ("3", {"n": "next"})]
        failing.clear()
        await processor.run_once()
        assert handled[2:] == [{"n": "bad"}, {"n": "next"}]  # in order, from the stored payloads
        assert "update failed, stored for a retry" in caplog.text
    finally:
        await db.close()


async def test_new_updates_are_handled_together_or_each_on_its_own(tmp_path):
    """A batch of new updates shares one transaction (one commit); if one of them fails, the whole
    batch is undone and each update is received on its own, so the others still go through."""
    db = Database(f"sqlite:///{tmp_path / 'inbox.db'}", Privacy([Fernet.generate_key().decode()], "p"))
    await db.start()
    handled: list[str] = []
    failing = set()

    async def handler(tx, event):
        handled.append(event)
        await tx.chat_messages.add(event, 1, False)  # an effect, to see whether it was kept
        if event in failing:
            raise RuntimeError("a bug while handling")

    def batch(*names: str) -> list[Received]:
        return [Received(name, f"lane-{name}", name, lambda name=name: {"n": name}) for name in names]

    processor = InboxProcessor(db, {"telegram": handler}, max_attempts=3)
    try:
        with counted_commits(db) as commits:
            await processor.receive_all("telegram", batch("a", "b", "c"))
        assert handled == ["a", "b", "c"] and len(commits) == 1

        failing.add("e")
        await processor.receive_all("telegram", batch("d", "e", "f"))
        assert handled[3:] == ["d", "e", "d", "e", "f"]  # together until "e" failed (all undone), then one by one
        async with db.transaction() as tx:
            kept = {name: await tx.chat_messages.for_conversation(name) for name in "abcdef"}
            waiting = await tx.inbox.pending(10)
        assert kept == {"a": [1], "b": [1], "c": [1], "d": [1], "e": [], "f": [1]}  # nothing twice
        assert [item.external_id for item in waiting] == ["e"]  # stored for a retry
    finally:
        await db.close()


async def test_webhook_updates_arriving_together_share_a_commit_and_each_hears_its_outcome(tmp_path):
    """Updates a webhook posts at once are handled as a poll's are: in one transaction, one commit.
    Each request returns only after that commit; if nothing could be stored, each request hears so
    (its webhook then answers 503 and Telegram posts it again)."""
    db = Database(f"sqlite:///{tmp_path / 'inbox.db'}", Privacy([Fernet.generate_key().decode()], "p"))
    await db.start()
    handled: list[str] = []

    async def handler(tx, event):
        handled.append(event)

    def update(name: str) -> Received:
        return Received(name, f"lane-{name}", name, lambda: {"n": name})

    processor = InboxProcessor(db, {"telegram": handler}, max_attempts=3)
    try:
        with counted_commits(db) as commits:
            await asyncio.gather(*(processor.receive_one("telegram", update(name)) for name in "abcde"))
        assert handled == list("abcde") and len(commits) == 1
        async with db.transaction() as tx:
            assert await tx.inbox.pending(10) == []
    finally:
        await db.close()  # nothing can be stored now
    outcomes = await asyncio.gather(*(processor.receive_one("telegram", update(name)) for name in "fg"),
                                    return_exceptions=True)
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes) and handled == list("abcde")
    with pytest.raises(RuntimeError):  # and the next one is tried afresh, not stuck behind them
        await processor.receive_one("telegram", update("h"))
