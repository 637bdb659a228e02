"""The outbox delivery worker against a real SQLite database, with fake senders (no Telegram)."""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event

from bot.delivery import DeliveryWorker, Sent, backoff_seconds
from bot.delivery.policy import as_send_error, metrics_label
from bot.limits import Limits
from bot.outbox import Outbox, child_lane, staff_lane
from bot.privacy import Privacy
from bot.transport import Failure, SendError
from storage import Database, Kind, OutboxItem, OutboxStatus, Priority

SECRET = "my secret words"  # stands for a child's sentence: must never reach a log


class Clock:
    """The database's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeSender:
    """Records what it 'sent'; `fail[item_id]` lists exceptions raised by successive attempts."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.sent: list[int] = []
        self.fail: dict[int, list[BaseException]] = {}
        self.gates: dict[int, asyncio.Event] = {}  # the send of this item waits for the event
        self.started: dict[int, asyncio.Event] = {}
        self.sent_event = asyncio.Event()
        self.next_message_id = 100

    async def send(self, item: OutboxItem, limits: Limits) -> Sent | None:
        self.calls.append(item.id)
        self.started.setdefault(item.id, asyncio.Event()).set()
        await asyncio.sleep(0)  # let other sends interleave
        if item.id in self.gates:
            await self.gates[item.id].wait()
        if self.fail.get(item.id):
            raise self.fail[item.id].pop(0)
        self.sent.append(item.id)
        self.sent_event.set()
        self.next_message_id += 1
        return Sent((self.next_message_id,))


class FakeMetrics:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def delivered(self, kind: str) -> None:
        self.events.append(("delivered", kind))

    def retried(self, kind: str, reason_class: str) -> None:
        self.events.append(("retried", kind, reason_class))

    def failed(self, kind: str) -> None:
        self.events.append(("failed", kind))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def privacy() -> Privacy:
    return Privacy([Fernet.generate_key().decode()], "pepper")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'oberih.db'}"


@pytest.fixture
async def db(db_url: str, privacy: Privacy, clock: Clock) -> AsyncIterator[Database]:
    database = Database(db_url, privacy, clock)
    await database.start()
    yield database
    await database.close()


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


def fast_limits(group_per_minute: float = 10_000) -> Limits:
    return Limits(global_per_second=10_000, chat_per_second=10_000, group_per_minute=group_per_minute)


def make_worker(db: Database, sender: FakeSender, **options: Any) -> DeliveryWorker:
    options.setdefault("owner", "worker-1")
    limits = options.pop("limits", None) or fast_limits()
    return DeliveryWorker(db, {"telegram": sender}, limits, **options)


async def to_child(db: Database, key: str, text: str = SECRET, priority: int = 1, channel: str = "telegram",
                   case_id: int | None = None) -> int:
    async with db.transaction() as tx:
        return await tx.outbox.add("child", channel, child_lane(key), Kind.SAY, {"text": text, "buttons": []},
                                   priority=priority, conversation_key=key, case_id=case_id)


async def to_staff(db: Database, case_id: int, kind: str = Kind.CASE_CARD, priority: int = 1,
                   target: str = "operator") -> int:
    async with db.transaction() as tx:
        return await tx.outbox.add(target, "telegram", staff_lane(target, case_id), kind, {"case_id": case_id},
                                   priority=priority, case_id=case_id)


async def get(db: Database, item_id: int) -> OutboxItem:
    async with db.transaction() as tx:
        item = await tx.outbox.get(item_id)
    assert item is not None
    return item


async def drain(worker: DeliveryWorker, rounds: int = 50) -> None:
    """Run rounds until one attempts nothing."""
    for _ in range(rounds):
        if not await worker.run_once():
            return
    raise AssertionError("the outbox never drained")


@contextmanager
def loop_time_offset() -> Iterator[list[float]]:
    """Move the event loop's clock (which aiolimiter reads) forward by hand: offset[0] seconds."""
    loop = asyncio.get_running_loop()
    real = loop.time
    offset = [0.0]
    with mock.patch.object(loop, "time", lambda: real() + offset[0]):
        yield offset


# -- order and independence --------------------------------------------------------------------------


async def test_a_lane_is_sent_in_order_one_item_at_a_time(db: Database, sender: FakeSender) -> None:
    worker = make_worker(db, sender)
    ids = [await to_child(db, "child-a", f"{SECRET} {n}") for n in range(3)]
    sender.gates[ids[0]] = asyncio.Event()

    first_round = asyncio.create_task(worker.run_once())
    await sender.started.setdefault(ids[0], asyncio.Event()).wait()
    assert sender.calls == ids[:1]  # nothing else of the lane starts while its first item is in flight
    sender.gates[ids[0]].set()
    # One round starts the lane; each item behind is leased with the record of the one before it and
    # sent next in the same task, so nothing is read again.
    assert await first_round == 1 and await worker.run_once() == 0

    assert sender.calls == sender.sent == ids
    for item_id in ids:
        item = await get(db, item_id)
        assert item.status == OutboxStatus.SENT and item.claimed_by is None
        assert item.result == {"message_ids": [101 + ids.index(item_id)]}
    async with db.transaction() as tx:  # the bot's messages in the child's chat, for quick exit
        assert await tx.chat_messages.for_conversation("child-a") == [101, 102, 103]


async def test_staff_messages_do_not_enter_the_childs_message_list(db: Database, sender: FakeSender) -> None:
    worker = make_worker(db, sender)
    card = await to_staff(db, case_id=7)
    await drain(worker)
    assert sender.sent == [card]
    assert (await get(db, card)).result == {"message_ids": [101]}
    async with db.transaction() as tx:
        assert await tx.chat_messages.for_conversation("child-a") == []


async def test_lanes_are_independent(db: Database, sender: FakeSender, clock: Clock) -> None:
    worker = make_worker(db, sender)
    a1 = await to_child(db, "child-a")
    a2 = await to_child(db, "child-a")
    b1 = await to_child(db, "child-b")
    b2 = await to_child(db, "child-b")
    card = await to_staff(db, case_id=1)
    sender.fail[a1] = [RuntimeError("network down")]

    assert await worker.run_once() == 3  # a1 (fails), b1 (and b2 right behind it), card: one per lane
    assert set(sender.sent) == {b1, b2, card} and sender.sent.index(b1) < sender.sent.index(b2)
    assert await worker.run_once() == 0  # child-a waits for a1's back-off

    # a2 stays behind a1: a lane keeps its order even across retries.
    a1_item = await get(db, a1)
    assert a1_item.status == OutboxStatus.PENDING and a1_item.attempts == 1
    assert (await get(db, a2)).status == OutboxStatus.PENDING

    clock.now = a1_item.next_attempt_at
    await drain(worker)
    assert sender.sent[3:] == [a1, a2]


async def test_a_slow_send_does_not_hold_other_lanes(db: Database, sender: FakeSender) -> None:
    worker = make_worker(db, sender)
    slow = await to_child(db, "child-a")
    sender.gates[slow] = asyncio.Event()
    fast = [await to_child(db, "child-b") for _ in range(3)]
    everything = asyncio.Event()
    stop = asyncio.Event()

    async def watch() -> None:
        while not set(fast) <= set(sender.sent):
            sender.sent_event.clear()
            await sender.sent_event.wait()
        everything.set()

    watcher = asyncio.create_task(watch())
    runner = asyncio.create_task(worker.run(stop))
    worker.wake.set()
    await asyncio.wait_for(everything.wait(), 30)
    assert sender.sent == fast  # all of child-b went while child-a's send was still running
    assert (await get(db, slow)).status == OutboxStatus.PENDING

    sender.gates[slow].set()
    stop.set()
    await runner
    await worker.flush(30)  # finishes the send still in flight
    await watcher
    assert sender.sent == [*fast, slow]
    assert (await get(db, slow)).status == OutboxStatus.SENT


# -- priorities and limits ---------------------------------------------------------------------------


async def test_urgent_card_goes_next_when_the_group_allowance_is_used_up(db: Database, sender: FakeSender) -> None:
    with loop_time_offset() as offset:
        worker = make_worker(db, sender, limits=fast_limits(group_per_minute=2), batch=50)
        cards = [await to_staff(db, case_id=n) for n in range(1, 61)]  # more than a batch
        reply = await to_child(db, "child-a")  # queued after all of them

        assert await worker.run_once() == 2  # the group allowance: two cards
        assert sender.sent == cards[:2]

        urgent = await to_staff(db, case_id=999, priority=Priority.URGENT)
        # The group is saturated; the child's reply is not held back by 58 waiting cards.
        assert await worker.run_once() == 1
        assert sender.sent == [*cards[:2], reply]
        assert await worker.run_once() == 0
        assert (await get(db, urgent)).claimed_by is None  # released, not kept

        offset[0] += 30  # one group message's worth of time (2 a minute)
        assert await worker.run_once() == 1
        assert sender.sent == [*cards[:2], reply, urgent]  # the urgent card, not the oldest card
        assert await worker.run_once() == 0

        offset[0] += 30
        assert await worker.run_once() == 1
        assert sender.sent[-1] == cards[2]


async def test_an_item_without_a_sender_stays_pending(db: Database, sender: FakeSender) -> None:
    worker = make_worker(db, sender)
    console = await to_child(db, "child-c", channel="console")
    telegram = await to_child(db, "child-t")
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    item = await get(db, console)
    assert item.status == OutboxStatus.PENDING and item.claimed_by is None and item.attempts == 0
    assert sender.sent == [telegram]
    await asyncio.wait_for(worker.flush(60), 10)  # returns as soon as nothing it can send is ready


# -- failures -----------------------------------------------------------------------------------------


async def test_retry_after_is_honoured_exactly(db: Database, sender: FakeSender, clock: Clock) -> None:
    metrics = FakeMetrics()
    worker = make_worker(db, sender, metrics=metrics)
    item_id = await to_child(db, "child-a")
    sender.fail[item_id] = [SendError(Failure.RATE_LIMITED, "429", retry_after=30)]
    start = clock.now

    assert await worker.run_once() == 1
    item = await get(db, item_id)
    assert item.status == OutboxStatus.PENDING and item.attempts == 1
    assert item.next_attempt_at == start + timedelta(seconds=30)
    assert item.claimed_by is None and item.error == "429"
    assert metrics.events == [("retried", Kind.SAY, "429")]

    clock.advance(29.9)
    assert await worker.run_once() == 0
    clock.advance(0.1)
    assert await worker.run_once() == 1
    assert sender.calls == [item_id, item_id] and sender.sent == [item_id]
    assert (await get(db, item_id)).status == OutboxStatus.SENT
    assert metrics.events[-1] == ("delivered", Kind.SAY)


async def test_permanent_failure_tells_staff_once_and_is_never_retried(db: Database, sender: FakeSender,
                                                                         clock: Clock) -> None:
    calls: list[tuple[int, str]] = []

    async def on_failed(tx: Any, item: OutboxItem, reason: str, failure: Failure) -> None:
        calls.append((item.id, reason))
        # In the same transaction: what the app does ("could not deliver" in the case topic).
        await tx.outbox.add("operator", "telegram", staff_lane("operator", 5), Kind.NOTICE,
                            {"case_id": 5, "key": "undeliverable"}, case_id=5)

    metrics = FakeMetrics()
    worker = make_worker(db, sender, on_failed=on_failed, metrics=metrics)
    blocked = await to_child(db, "child-a", case_id=5)
    after = await to_child(db, "child-a", case_id=5)
    sender.fail[blocked] = [SendError(Failure.RECIPIENT_GONE, "blocked")]

    assert await worker.run_once() == 1
    item = await get(db, blocked)
    assert item.status == OutboxStatus.FAILED and item.error == "blocked" and item.attempts == 1
    assert calls == [(blocked, "blocked")]
    assert metrics.events == [("failed", Kind.SAY)]

    clock.advance(3600)
    await drain(worker)
    assert sender.calls.count(blocked) == 1  # never retried
    async with db.transaction() as tx:  # written by on_failed, committed with mark_failed
        [notice] = [i.id for i in await tx.outbox.items(case_id=5) if i.kind == Kind.NOTICE]
    assert set(sender.sent) == {notice, after}  # a failed item stops blocking its lane
    assert calls == [(blocked, "blocked")]


async def test_a_failing_on_failed_hook_still_stops_the_retries(db: Database, sender: FakeSender,
                                                                clock: Clock) -> None:
    async def on_failed(tx: Any, item: OutboxItem, reason: str, failure: Failure) -> None:
        raise RuntimeError("hook bug")

    worker = make_worker(db, sender, on_failed=on_failed)
    item_id = await to_child(db, "child-a")
    sender.fail[item_id] = [SendError(Failure.RECIPIENT_GONE, "chat not found")]
    assert await worker.run_once() == 1
    assert (await get(db, item_id)).status == OutboxStatus.FAILED
    clock.advance(3600)
    assert await worker.run_once() == 0


async def test_a_generic_error_is_retried_with_back_off(db: Database, sender: FakeSender, clock: Clock,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.delivery")
    metrics = FakeMetrics()
    worker = make_worker(db, sender, metrics=metrics)
    item_id = await to_child(db, "child-a", case_id=42)
    sender.fail[item_id] = [RuntimeError(f"failed to send {SECRET}"), ConnectionResetError(SECRET)]

    start = clock.now
    assert await worker.run_once() == 1
    item = await get(db, item_id)
    assert item.attempts == 1
    assert start + timedelta(seconds=2) <= item.next_attempt_at <= start + timedelta(seconds=2.2)

    clock.advance(1.9)
    assert await worker.run_once() == 0
    clock.advance(0.4)
    assert await worker.run_once() == 1  # fails again: 4 s more
    item = await get(db, item_id)
    assert item.attempts == 2
    assert clock.now + timedelta(seconds=4) <= item.next_attempt_at <= clock.now + timedelta(seconds=4.4)

    clock.advance(4.5)
    assert await worker.run_once() == 1
    assert sender.sent == [item_id]
    assert (await get(db, item_id)).status == OutboxStatus.SENT
    assert metrics.events == [("retried", Kind.SAY, "other"), ("retried", Kind.SAY, "network"),
                              ("delivered", Kind.SAY)]

    retries = [r for r in caplog.records if r.getMessage() == "delivery retry"]
    assert [(r.item, r.case, r.kind, r.attempt) for r in retries] == [  # type: ignore[attr-defined]
        (item_id, 42, Kind.SAY, 1), (item_id, 42, Kind.SAY, 2)]
    assert retries[0].reason.startswith("RuntimeError at test_delivery.py:")  # type: ignore[attr-defined]
    for record in caplog.records:  # one structured line per retry, no text, no platform ids
        assert SECRET not in record.getMessage() and SECRET not in repr(record.__dict__)
    assert SECRET not in (await get(db, item_id)).error


async def test_an_outage_is_waited_out_until_the_retention_period_ends(db: Database, sender: FakeSender,
                                                                       clock: Clock) -> None:
    """A network that fails for hours loses nothing: the item is retried (at least every five minutes)
    until it is older than RETENTION_DAYS (here an hour), and only then given up and told."""
    failed: list[str] = []

    async def on_failed(tx: Any, item: OutboxItem, reason: str, failure: Failure) -> None:
        failed.append(reason)

    metrics = FakeMetrics()
    worker = make_worker(db, sender, keep_seconds=3600, on_failed=on_failed, metrics=metrics)
    item_id = await to_child(db, "child-a")
    sender.fail[item_id] = [TimeoutError()] * 100
    tries = 0
    while (await get(db, item_id)).status == OutboxStatus.PENDING:
        tries += await worker.run_once()
        clock.advance(331)  # the longest wait: five minutes and its jitter
    assert tries > 10  # more than the old 30 attempts' worth of hours would matter: never a fixed count
    assert (await get(db, item_id)).status == OutboxStatus.FAILED
    assert len(failed) == 1 and failed[0].startswith("TimeoutError")
    assert metrics.events[-1] == ("failed", Kind.SAY)


# -- exactly once as far as a person can see --------------------------------------------------------


async def test_two_workers_never_send_an_item_twice(db_url: str, db: Database, privacy: Privacy,
                                                    clock: Clock, sender: FakeSender) -> None:
    other_db = Database(db_url, privacy, clock)  # a second process on the same database
    await other_db.start()
    try:
        workers = [make_worker(db, sender, owner="host:1", batch=5),
                   make_worker(other_db, sender, owner="host:2", batch=5)]
        lanes: dict[int, str] = {}

        async def queue() -> None:
            for _ in range(3):
                for lane in range(8):
                    lanes[await to_child(db, f"child-{lane}")] = f"child-{lane}"
                lanes[await to_staff(db, case_id=1)] = "case-1"

        # Rounds started together: both claim from the same ready items at the same moment.
        await queue()
        for _ in range(50):
            if len(sender.sent) == len(lanes):
                break
            await asyncio.gather(*(worker.run_once() for worker in workers))

        # And both delivery loops running side by side.
        await queue()
        stop = asyncio.Event()
        done = asyncio.Event()

        async def watch() -> None:
            while len(sender.sent) < len(lanes):
                sender.sent_event.clear()
                await sender.sent_event.wait()
            done.set()

        watcher = asyncio.create_task(watch())
        runners = [asyncio.create_task(worker.run(stop)) for worker in workers]
        for worker in workers:
            worker.wake.set()
        await asyncio.wait_for(done.wait(), 60)
        stop.set()
        await asyncio.gather(*runners, watcher)
        for worker in workers:
            await worker.flush(10)
            assert await worker.run_once() == 0

        assert Counter(sender.calls) == Counter(dict.fromkeys(lanes, 1))  # each item sent exactly once
        for lane in set(lanes.values()):  # each lane in order
            in_lane = [item_id for item_id in sender.sent if lanes[item_id] == lane]
            assert in_lane == sorted(in_lane)
        async with db.transaction() as tx:
            assert len(await tx.outbox.items(status=OutboxStatus.SENT)) == len(lanes)
    finally:
        await other_db.close()


async def test_a_crash_between_send_and_record_is_the_documented_window(db: Database, sender: FakeSender,
                                                                        clock: Clock) -> None:
    """The platform took the message, then the process died before mark_sent: at-least-once, not lost."""
    item_id = await to_child(db, "child-a")
    real_send = sender.send
    accepted = asyncio.Event()

    async def send_then_die(item: OutboxItem, limits: Limits) -> Sent | None:
        result = await real_send(item, limits)  # the platform accepted the message…
        accepted.set()
        await asyncio.Event().wait()  # …and the process dies before recording it
        return result

    first = make_worker(db, mock.Mock(send=send_then_die), owner="before-crash", lease_seconds=60)
    crashed = asyncio.create_task(first.run_once())
    await accepted.wait()
    crashed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await crashed

    item = await get(db, item_id)
    assert item.status == OutboxStatus.PENDING and item.claimed_by == "before-crash"

    restarted = make_worker(db, sender, owner="after-restart")
    assert await restarted.run_once() == 0  # the lease still holds it: nobody sends it meanwhile
    clock.advance(61)
    assert await restarted.run_once() == 1  # the lease ran out: sent again

    assert sender.sent == [item_id, item_id]  # the person saw it twice — the documented window
    item = await get(db, item_id)
    assert item.status == OutboxStatus.SENT and item.result == {"message_ids": [102]}
    assert await restarted.run_once() == 0  # and never a third time


async def test_a_long_send_keeps_its_lease(db: Database, sender: FakeSender, clock: Clock) -> None:
    """A send that outlives its lease is not started again by the same worker."""
    worker = make_worker(db, sender, lease_seconds=60)
    item_id = await to_child(db, "child-a")
    sender.gates[item_id] = asyncio.Event()
    stop = asyncio.Event()
    runner = asyncio.create_task(worker.run(stop))
    worker.wake.set()
    await sender.started.setdefault(item_id, asyncio.Event()).wait()

    clock.advance(120)  # the lease ran out while the send is still running
    assert await asyncio.wait_for(worker.run_once(), 10) == 0  # re-claimed, but in flight: not started twice
    item = await get(db, item_id)
    assert item.claimed_by == "worker-1" and item.claimed_until == clock.now + timedelta(seconds=60)  # renewed

    sender.gates[item_id].set()
    stop.set()
    await runner
    await worker.flush(30)
    assert sender.calls == [item_id]
    assert (await get(db, item_id)).status == OutboxStatus.SENT


async def _erase_while_sending(db: Database, sender: FakeSender, worker: DeliveryWorker, item_id: int,
                               child: str) -> None:
    """The child erases their data (their pending messages are cancelled) while `item_id` is being sent."""
    sender.gates[item_id] = asyncio.Event()
    sending = asyncio.create_task(worker.run_once())
    await sender.started.setdefault(item_id, asyncio.Event()).wait()
    async with db.transaction() as tx:
        assert await tx.outbox.forget_child(child) == 1
    sender.gates[item_id].set()
    assert await sending == 1


async def test_a_message_to_a_child_who_erased_their_data_meanwhile(db: Database, sender: FakeSender) -> None:
    """The child erased their data while the message was on its way: nothing of theirs is recorded."""
    worker = make_worker(db, sender)
    item_id = await to_child(db, "child-a")
    await _erase_while_sending(db, sender, worker, item_id, "child-a")
    assert (await get(db, item_id)).status == OutboxStatus.CANCELLED
    async with db.transaction() as tx:
        assert await tx.chat_messages.for_conversation("child-a") == []


@pytest.mark.parametrize("error", [SendError(Failure.RECIPIENT_GONE, "blocked"), RuntimeError("network down")])
async def test_a_failure_for_a_child_who_erased_their_data_meanwhile(db: Database, sender: FakeSender,
                                                                     error: Exception) -> None:
    hooked: list[int] = []

    async def on_failed(tx: Any, item: OutboxItem, reason: str, failure: Failure) -> None:
        hooked.append(item.id)

    worker = make_worker(db, sender, on_failed=on_failed)
    item_id = await to_child(db, "child-a")
    sender.fail[item_id] = [error]
    await _erase_while_sending(db, sender, worker, item_id, "child-a")
    item = await get(db, item_id)
    assert (item.status, item.attempts, item.error, hooked) == (OutboxStatus.CANCELLED, 0, None, [])


async def test_a_childs_message_takes_few_statements_and_no_conversation_read(db: Database) -> None:
    """The round reads ready items with their children's addresses and claims them in one statement;
    each outcome is one conditional UPDATE that also tells whether an item waits behind it in its
    lane (plus the message ids kept for a quick exit)."""
    addresses: dict[int, Any] = {}

    class AddressSender(FakeSender):
        async def send(self, item: OutboxItem, limits: Limits) -> Sent | None:
            addresses[item.id] = item.address
            return await super().send(item, limits)

    worker = make_worker(db, AddressSender())
    async with db.transaction() as tx:
        for n in range(3):
            await tx.conversations.save(f"child-{n}", "telegram", {"lang": "uk"}, {"chat_id": 500 + n})
    ids = [await to_child(db, f"child-{n}") for n in range(3)]
    statements: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements[statement.split(None, 1)[0].upper()] += 1

    event.listen(db.sync_engine, "before_cursor_execute", count)
    try:
        assert await worker.run_once() == 3
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", count)
    assert addresses == {item_id: {"chat_id": 500 + n} for n, item_id in enumerate(ids)}
    assert {word: statements[word] for word in ("SELECT", "UPDATE", "INSERT", "DELETE")} == {
        "SELECT": 1, "UPDATE": 1 + 3, "INSERT": 3, "DELETE": 0}


async def test_a_finished_send_calls_a_round_only_for_what_waits_behind_it(db: Database, sender: FakeSender) -> None:
    """Reading ready items is the dearest statement of delivery: a send whose lane has nothing waiting
    asks for no round, and one with an item behind it leases that item with its record and sends it
    next, without a round; only an item it could not take (held elsewhere) asks for one."""
    worker = make_worker(db, sender)
    first, behind = await to_child(db, "child-a"), await to_child(db, "child-a")
    assert await worker.run_once() == 1 and sender.sent == [first, behind]
    assert not worker._due.is_set()  # nothing left behind: no round

    third, held = await to_child(db, "child-b"), await to_child(db, "child-b")
    async with db.transaction() as tx:  # another live worker holds the item behind
        await tx.heartbeats.beat("worker-2")
        assert await tx.outbox.claim([held], tx.now, "worker-2", 60) == {held}
    assert await worker.run_once() == 1 and sender.sent[2:] == [third]
    assert worker._due.is_set()  # `held` waits in the lane, not taken here: a round is due


async def test_a_round_that_finds_every_slot_taken_asks_for_the_next_when_a_send_finishes(
        db: Database, sender: FakeSender) -> None:
    """With every send slot taken, a round reads nothing; the send that finishes next must still ask
    for a round, or what waits for a slot waits a whole poll (about a second) for nothing."""
    worker = make_worker(db, sender, batch=1)
    busy, waiting = await to_child(db, "child-a"), await to_child(db, "child-b")
    sender.gates[busy] = asyncio.Event()
    first = asyncio.create_task(worker.run_once())
    await sender.started.setdefault(busy, asyncio.Event()).wait()
    worker.rounds.backlog = False  # as a round that had a free slot left it
    assert await worker.run_once() == 0  # the one slot is taken: nothing read
    worker._due.clear()
    sender.gates[busy].set()
    await first
    assert worker._due.is_set()  # a round is due for `waiting`
    assert await worker.run_once() == 1 and sender.sent == [busy, waiting]


async def test_flush_gives_up_on_a_hung_send(db: Database, sender: FakeSender) -> None:
    worker = make_worker(db, sender)
    hung = await to_child(db, "child-a")
    sender.gates[hung] = asyncio.Event()  # never set
    other = await to_child(db, "child-b")
    await worker.flush(0.2)
    assert sender.sent == [other]
    item = await get(db, hung)
    assert item.status == OutboxStatus.PENDING and item.claimed_by == "worker-1"  # back after its lease


async def test_run_wakes_when_an_item_is_queued(db: Database, sender: FakeSender) -> None:
    worker = make_worker(db, sender)
    stop = asyncio.Event()
    runner = asyncio.create_task(worker.run(stop))
    item_id = await to_child(db, "child-a")
    worker.wake.set()
    await asyncio.wait_for(sender.sent_event.wait(), 30)
    stop.set()
    await runner
    await worker.flush(5)
    assert sender.sent == [item_id]
    assert (await get(db, item_id)).status == OutboxStatus.SENT


# -- the pieces -----------------------------------------------------------------------------------------


def item(lane: str, target: str = "child", channel: str = "telegram") -> OutboxItem:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    return OutboxItem(id=1, target=target, channel=channel, lane=lane, conversation_key=None, case_id=None,  # type: ignore[arg-type]
                      kind=Kind.SAY, payload={}, priority=1, status=OutboxStatus.PENDING, attempts=0,
                      next_attempt_at=now, created_at=now, sent_at=None, result=None, error=None,
                      claimed_until=None, claimed_by=None)


async def test_limits_pick_the_channel_and_lane_buckets() -> None:
    limits = Limits(30, 1, 20)
    a, b = item("child:a"), item("child:b")
    card1, card2 = item("operator:1", "operator"), item("operator:2", "operator")
    police = item("police:1", "police")
    viber = item("child:v", channel="viber")

    assert limits.for_item(a)[0] is limits.for_item(card1)[0]  # one Telegram-wide bucket
    assert limits.for_item(viber)[0] is not limits.for_item(a)[0]
    assert limits.for_item(a)[1] is not limits.for_item(b)[1]  # one per child's chat
    assert limits.for_item(card1)[1] is limits.for_item(card2)[1]  # one per staff chat
    assert limits.for_item(police)[1] is not limits.for_item(card1)[1]
    assert (limits.for_item(card1)[1].max_rate, limits.for_item(card1)[1].time_period) == (20, 60)

    await limits.acquire(a)
    assert not limits.has_capacity(a)  # one a second in a chat
    assert limits.has_capacity(b)


async def test_chat_buckets_are_bounded() -> None:
    limits = Limits(10_000, 1, 20, max_chats=3)
    with loop_time_offset() as offset:
        for n in range(3):
            await limits.acquire(item(f"child:{n}"))
        limits.for_item(item("child:new"))
        assert limits.chats == 4  # busy buckets are kept, never reset early
        offset[0] += 5  # they drain
        limits.for_item(item("child:newer"))
        assert limits.chats == 1


def test_rates_below_one_are_accepted() -> None:
    limits = Limits(30, 0.5, 20)
    assert limits is not None
    with pytest.raises(ValueError):
        Limits(30, 0, 20)


def test_backoff_and_reason_classes() -> None:
    assert backoff_seconds(1, lambda: 0.0) == 2
    assert backoff_seconds(3, lambda: 1.0) == pytest.approx(8.8)
    assert backoff_seconds(30, lambda: 0.0) == 300
    assert metrics_label(SendError(Failure.RATE_LIMITED, retry_after=3).failure) == "429"
    assert metrics_label(Failure.SERVER) == "5xx"
    assert metrics_label(Failure.NETWORK) == "network"
    assert as_send_error(TimeoutError()).failure is Failure.NETWORK
    assert metrics_label(as_send_error(KeyError("text")).failure) == "other"
    assert as_send_error(ValueError(SECRET)).reason == "ValueError"


# -- hand-over: a new item straight from its transaction to the running worker --------------------------


@contextmanager
def counted_statements(db: Database) -> Iterator[Counter[str]]:
    """First words of the SQL statements run meanwhile ("SELECT", "UPDATE"…)."""
    statements: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements[statement.split(None, 1)[0].upper()] += 1

    event.listen(db.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", count)


@contextmanager
def running(worker: DeliveryWorker) -> Iterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    runner = asyncio.create_task(worker.run(stop))
    try:
        yield runner
    finally:
        stop.set()


async def started(worker: DeliveryWorker) -> None:
    """Until the worker's loop runs (new items are leased to it from then on)."""
    while worker.lease_for("telegram") is None:
        await asyncio.sleep(0)


async def test_a_new_message_goes_straight_to_the_running_worker(db: Database, sender: FakeSender) -> None:
    """Queued already leased to the worker and started after the commit: no round reads or claims it."""
    worker = make_worker(db, sender)
    outbox = Outbox(worker)
    item_id = 1  # the first item of a new database
    sender.gates[item_id] = asyncio.Event()
    with running(worker):
        await started(worker)
        with counted_statements(db) as statements:
            async with db.transaction() as tx:
                await outbox.say_to_child(tx, "telegram", "child-a", "hi", address={"chat_id": 5})
            await asyncio.wait_for(sender.started.setdefault(item_id, asyncio.Event()).wait(), 10)
            until_sent = dict(statements)
        sender.gates[item_id].set()
        await asyncio.wait_for(sender.sent_event.wait(), 10)
        await worker.flush(5)
    assert until_sent == {"INSERT": 1}  # the item, leased in that very INSERT; nothing read, nothing claimed
    assert not worker.wake.is_set()
    item = await get(db, item_id)
    assert item.status == OutboxStatus.SENT and sender.sent == [item_id]


async def test_a_lane_busy_in_the_same_transaction_keeps_its_order(db: Database, sender: FakeSender) -> None:
    worker = make_worker(db, sender)
    outbox = Outbox(worker)
    with running(worker):
        await started(worker)
        async with db.transaction() as tx:
            await outbox.say_to_child(tx, "telegram", "child-a", "first", address={"chat_id": 5})
            await outbox.say_to_child(tx, "telegram", "child-a", "second", address={"chat_id": 5})
            first, second = [item.id for item in await tx.outbox.items()]
            leased = [item.claimed_by for item in await tx.outbox.items()]
        while len(sender.sent) < 2:
            await asyncio.wait_for(sender.sent_event.wait(), 10)
            sender.sent_event.clear()
        await worker.flush(5)
    assert leased == ["worker-1", None]  # the second waits for a round, behind the first
    assert sender.sent == [first, second]


async def test_a_new_message_without_a_free_slot_waits_for_a_round(db: Database, sender: FakeSender) -> None:
    """Leased to the worker but not started: a round of the same worker takes it, in its turn."""
    worker = make_worker(db, sender, batch=1)
    outbox = Outbox(worker)
    busy = await to_child(db, "child-a")
    sender.gates[busy] = asyncio.Event()
    with running(worker):
        await started(worker)
        outbox.nudge()
        await asyncio.wait_for(sender.started.setdefault(busy, asyncio.Event()).wait(), 10)
        async with db.transaction() as tx:
            await outbox.say_to_child(tx, "telegram", "child-b", "hi", address={"chat_id": 6})
        waiting = (await get(db, busy + 1))
        await asyncio.sleep(0.05)
        assert sender.calls == [busy]  # the one send slot is taken
        sender.gates[busy].set()
        while len(sender.sent) < 2:
            await asyncio.wait_for(sender.sent_event.wait(), 10)
            sender.sent_event.clear()
        await worker.flush(5)
    assert waiting.claimed_by == "worker-1"
    assert sender.sent == [busy, waiting.id]


async def test_a_stopped_worker_gets_no_leased_items(db: Database, sender: FakeSender) -> None:
    worker = make_worker(db, sender)
    outbox = Outbox(worker)
    async with db.transaction() as tx:
        await outbox.say_to_child(tx, "telegram", "child-a", "hi", address={"chat_id": 5})
    await db.finish_calls(5)  # what runs after the commit
    (queued,) = await tx_items(db)
    assert queued.claimed_by is None and worker.wake.is_set()  # a round sends it


async def tx_items(db: Database) -> list[OutboxItem]:
    async with db.transaction() as tx:
        return await tx.outbox.items()


async def test_sends_that_finish_together_are_recorded_in_one_transaction(db: Database, sender: FakeSender) -> None:
    worker = make_worker(db, sender)
    ids = [await to_child(db, f"child-{n}") for n in range(3)]
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    event.listen(db.sync_engine, "commit", count)
    try:
        assert await worker.run_once() == 3
    finally:
        event.remove(db.sync_engine, "commit", count)
    assert len(commits) == 2  # the claim, then the three outcomes
    assert [(await get(db, item_id)).status for item_id in ids] == [OutboxStatus.SENT] * 3


async def test_a_topic_that_could_not_be_deleted_is_shown_to_admins_in_general(db: Database, sender: FakeSender) -> None:
    from bot.delivery.losses import Losses
    from bot.staff_chats import StaffChats

    outbox = Outbox()
    async with db.transaction() as tx:
        await outbox.delete_topic(tx, "operator", 4321)
        (item,) = await tx.outbox.items()
    sender.fail[item.id] = [SendError(Failure.SERVER, "telegram server error")]
    worker = make_worker(db, sender, keep_seconds=0, on_failed=Losses(Outbox(), StaffChats(-1001234567890)))
    assert await worker.run_once() == 1
    async with db.transaction() as tx:
        items = await tx.outbox.items()
    assert items[0].status is OutboxStatus.FAILED
    (line,) = [i for i in items if i.kind is Kind.GENERAL]
    assert line.payload["key"] == "operator.topic_not_deleted"
    assert line.payload["slots"]["link"] == "https://t.me/c/1234567890/4321"
