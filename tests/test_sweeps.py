"""Issue 5: the scheduler's sweeps (bot/scheduler.py) with a clock moved by hand. Each acts once, even
when two processes sweep in the same minute: SLA alarms, check-ins, abandoned drafts, the retention
purge and stuck outbox claims."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from app.build import Service as App
from bot.outbox import Outbox
from storage import Kind
from bot.privacy import load_privacy
from bot.scheduler import SWEEP_LIMIT, Sweeps
from bot.settings import load_settings
from dialogs.engine import Engine
from dialogs.model import State
from dialogs.validate import load_content
from storage import Database, OutboxStatus, StatEvent
from tests.fakes.telegram_api import FakeTelegram
from tests.resilience_support import Phone, drained, received
from tests.support import (
    ADMIN,
    OPERATOR,
    TEST_CONTENT,
    Child,
    Staff,
    bot_settings,
    card_of,
    report,
    running_bot,
    settled,
)


class MovableClock:
    """Real time plus an offset the test moves forward: retries and leases still run by themselves."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def bot(tmp_path, tg, clock) -> AsyncIterator[App]:
    async with running_bot(bot_settings(tmp_path, tg), clock=clock) as app:
        yield app


@pytest.fixture
async def second(bot: App, clock: MovableClock) -> AsyncIterator[Sweeps]:
    """Another process's sweeps: its own database engine on the same file, the same clock."""
    database = Database(bot.settings.resolved_database_url, bot.conversations.privacy, clock)
    await database.start()
    try:
        yield Sweeps(database, bot.engine, Outbox(), bot.settings)
    finally:
        await database.close()


async def both(first: Sweeps, other: Sweeps, job: str) -> None:
    """The same job in two processes at the same moment, twice over."""
    for _ in range(2):
        await asyncio.gather(getattr(first, job)(), getattr(other, job)())


def general_lines(tg: FakeTelegram, text: str) -> list[str]:
    """Lines in the operator chat's General topic (no thread) containing `text`."""
    return [m.text for m in tg.sent_to(OPERATOR) if m.thread_id is None and text in (m.text or "")]


# -- SLA ---------------------------------------------------------------------------------------------


async def test_an_unaccepted_case_is_raised_once_per_level_even_by_two_processes(bot, second, tg, clock):
    app, say = bot, bot.engine.say
    ordinary = Child(app, tg, 701)
    await report(ordinary)
    urgent = Phone(tg, app.engine, 702)
    await urgent.report("Someone keeps sending me scary messages", via_help=True)
    await settled(app, tg)
    async with app.db.transaction() as tx:
        cases = {case.urgent: case for case in [await tx.cases.get(1), await tx.cases.get(2)]}
    assert set(cases) == {True, False}
    topic = {urgent_: case.operator_topic_id for urgent_, case in cases.items()}

    def notices(urgent_: bool, minutes: int) -> int:
        return received(tg, OPERATOR, topic[urgent_])[say("en", "operator.notice.sla", minutes=minutes)]

    def alarms(urgent_: bool, minutes: int) -> int:
        number = cases[urgent_].number
        return len(general_lines(tg, say("en", "operator.notice.sla_admins", case_number=number, minutes=minutes)))

    steps = [  # minutes since the report, then (urgent level 1, urgent level 2, ordinary 1, ordinary 2)
        (9, (0, 0, 0, 0)), (11, (1, 0, 0, 0)), (21, (1, 1, 0, 0)), (59, (1, 1, 0, 0)), (61, (1, 1, 1, 0)),
        (121, (1, 1, 1, 1)), (180, (1, 1, 1, 1)),
    ]
    waited = 0
    for minutes, expected in steps:
        clock.advance(minutes=minutes - waited)
        waited = minutes
        await both(app.sweeps, second, "every_minute")
        await settled(app, tg)
        seen = (notices(True, 10), alarms(True, 20), notices(False, 60), alarms(False, 120))
        assert seen == expected, f"after {minutes} minutes: {seen}"
    async with app.db.transaction() as tx:
        assert {(await tx.cases.get(case.id)).sla_level for case in cases.values()} == {2}


async def test_an_accepted_case_is_not_raised(bot, tg, clock):
    app = bot
    moderator = Staff(app, tg, ADMIN, "Ada")
    await report(Child(app, tg, 703))
    await moderator.press(card_of(tg), "operator.button.accept")
    clock.advance(hours=3)
    await app.sweeps.every_minute()
    await settled(app, tg)
    assert not any("⏰" in (m.text or "") for m in tg.sent_to(OPERATOR))


# -- check-in ----------------------------------------------------------------------------------------


async def test_a_check_in_goes_once_after_checkin_days_and_only_to_who_wanted_an_answer(bot, second, tg, clock):
    app, say = bot, bot.engine.say
    wants, does_not = Child(app, tg, 711), Child(app, tg, 712)
    await report(wants, reply="reply.yes")
    await report(does_not, reply="reply.no")
    checkin = say("en", "notice.checkin")
    before = {child.user_id: len(child.inbox) for child in (wants, does_not)}

    clock.advance(days=app.settings.checkin_days, minutes=-1)
    await both(app.sweeps, second, "every_minute")
    await settled(app, tg)
    assert checkin not in wants.texts()

    clock.advance(minutes=2)
    await both(app.sweeps, second, "every_minute")
    await settled(app, tg)
    clock.advance(days=5)
    await both(app.sweeps, second, "every_minute")
    await settled(app, tg)

    assert wants.texts().count(checkin) == 1 and wants.texts()[before[wants.user_id]:].count(checkin) == 1
    assert checkin not in does_not.texts()
    async with app.db.transaction() as tx:
        wanted = await tx.cases.open_for(app.conversations.privacy.pseudonym("telegram", wants.user_id))
    sent = received(tg, OPERATOR, wanted.operator_topic_id)[say("en", "operator.notice.checkin_sent")]
    assert sent == 1 and received(tg, OPERATOR)[say("en", "operator.notice.checkin_sent")] == 1


# -- abandoned drafts ----------------------------------------------------------------------------------


async def test_an_abandoned_draft_is_cleared_and_the_child_is_told_kindly_on_return(bot, tg, clock):
    app, say = bot, bot.engine.say
    gone = Child(app, tg, 721)
    await gone.send("/start")
    await gone.press("menu.report")
    await gone.press("category.scam")
    await gone.send("Someone stole my game account")
    clock.advance(hours=app.settings.draft_ttl_hours - 1)
    fresh = Child(app, tg, 722)  # a draft started later, not yet abandoned
    await fresh.send("/start")
    await fresh.press("menu.report")
    await fresh.press("category.hate")

    await app.sweeps.every_hour()
    async with app.db.transaction() as tx:  # not yet: DRAFT_TTL_HOURS have not passed
        state = State.from_dict((await tx.conversations.get(key(app, gone))).state)
    assert state.has_draft and not state.expired

    clock.advance(hours=2)
    await app.sweeps.every_hour()
    await app.sweeps.every_hour()
    async with app.db.transaction() as tx:
        state = State.from_dict((await tx.conversations.get(key(app, gone))).state)
        other = State.from_dict((await tx.conversations.get(key(app, fresh))).state)
    assert not state.has_draft and state.expired and state.resume is None
    assert other.has_draft and not other.expired

    # The child comes back: one kind note, then a fresh start (no offer to continue the old draft).
    seen = len(gone.inbox)
    await gone.send("/start")
    new = gone.texts()[seen:]
    assert new[0] == say("en", "common.draft_expired")
    assert say("en", "resume.text") not in new and say("en", "menu.text") in new
    await gone.press("menu.report")
    assert gone.last.text == say("en", "report.category")
    await gone.send("/menu")
    assert gone.texts().count(say("en", "common.draft_expired")) == 1

    # The later draft goes on where it was.
    await fresh.send("They write hateful things about my family")
    assert fresh.last.text == say("en", "report.where")
    assert say("en", "common.draft_expired") not in fresh.texts()


def key(app: App, child: Child) -> str:
    return app.conversations.privacy.pseudonym("telegram", child.user_id)


# -- sweeps against the database alone ---------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path, clock: MovableClock) -> AsyncIterator[tuple[Database, Sweeps]]:
    settings = load_settings(_env_file=None, data_dir=tmp_path, default_language="en", content_dir=TEST_CONTENT,
                             database_url=f"sqlite:///{tmp_path / 'sweeps.db'}")
    database = Database(settings.resolved_database_url, load_privacy(None, None, tmp_path), clock)
    await database.start()
    engine = Engine(load_content(settings.content_dir), settings.country, "en",
                    draft_hours=settings.draft_ttl_hours, retention_days=settings.retention_days)
    try:
        yield database, Sweeps(database, engine, Outbox(), settings)
    finally:
        await database.close()


async def test_every_abandoned_draft_expires_however_many_idle_children_there_are(store, clock):
    """More idle conversations without a draft than one sweep takes must not hide a draft behind them."""
    database, sweeps = store
    idle = State(lang="en", step="menu").to_dict()
    async with database.transaction() as tx:
        for n in range(SWEEP_LIMIT + 1):
            await tx.conversations.save(f"idle-{n:04d}", "telegram", idle, {"chat_id": n})
    clock.advance(hours=1)
    draft = State(lang="en", step="what", answers={"category": "scam"}).to_dict()
    async with database.transaction() as tx:
        await tx.conversations.save("with-draft", "telegram", draft, {"chat_id": 9999})

    clock.advance(hours=sweeps.settings.draft_ttl_hours + 2)
    await sweeps.every_hour()
    await sweeps.every_hour()
    async with database.transaction() as tx:
        state = State.from_dict((await tx.conversations.get("with-draft")).state)
    assert not state.has_draft and state.expired, "the abandoned draft was never reached by the sweep"


async def test_a_stuck_outbox_claim_is_released_once_its_lease_ran_out(store, clock):
    database, sweeps = store
    async with database.transaction() as tx:
        dead = await tx.outbox.add("child", "telegram", "child:k", Kind.SAY, {"text": "hi", "buttons": []},
                                   conversation_key="k")
        alive = await tx.outbox.add("child", "telegram", "child:j", Kind.SAY, {"text": "hi", "buttons": []},
                                    conversation_key="j")
        claimed = await tx.outbox.claim_ready(tx.now, "dead-worker:1", 10, 60)
    assert {item.id for item in claimed} == {dead, alive}
    clock.advance(seconds=30)
    async with database.transaction() as tx:  # the other worker renews its lease; the dead one cannot
        await tx.outbox.release(alive)
        assert [i.id for i in await tx.outbox.claim_ready(tx.now, "live-worker:2", 10, 60)] == [alive]
    await sweeps.every_minute()
    async with database.transaction() as tx:
        assert (await tx.outbox.get(dead)).claimed_by == "dead-worker:1"  # its lease still runs

    clock.advance(seconds=31)
    await sweeps.every_minute()
    async with database.transaction() as tx:
        released, held = await tx.outbox.get(dead), await tx.outbox.get(alive)
    assert released.claimed_by is None and released.claimed_until is None
    assert released.status == OutboxStatus.PENDING and released.attempts == 0
    assert held.claimed_by == "live-worker:2"  # a lease still running is left alone


# -- retention -------------------------------------------------------------------------------------------


async def test_a_closed_case_is_purged_after_retention_keeping_only_statistics(bot, tg, clock):
    app = bot
    admin = Staff(app, tg, ADMIN, "Ada")
    child = Child(app, tg, 731)
    await report(child, what="My secret story about Maksym")
    card = card_of(tg)
    topic = tg.topics(OPERATOR)[-1].thread_id
    await admin.press(card, "operator.button.take")
    await child.send("And one more secret detail")
    await admin.write("We are here for you", thread_id=topic)
    await admin.press(card, "operator.button.close")
    await admin.press(card, "operator.outcome.advice")
    async with app.db.transaction() as tx:
        case = await tx.cases.open_for(key(app, child)) or await tx.cases.latest_for(key(app, child))
    assert case.status == "closed"

    clock.advance(days=app.settings.retention_days - 1)
    await app.sweeps.every_hour()
    await drained(app, tg)
    async with app.db.transaction() as tx:
        assert await tx.cases.get(case.id) is not None
        counted = await tx.stats.between(date.min, date.max)
    assert [t.thread_id for t in tg.topics(OPERATOR)] == [topic]

    clock.advance(days=2)
    await app.sweeps.every_hour()
    await app.sweeps.every_hour()
    async with app.db.transaction() as tx:
        assert await tx.cases.get(case.id) is None
        assert await tx.cases.by_number(case.number) is None
        assert await tx.conversations.get(key(app, child)) is None  # idle past retention: the address is gone
        stats = await tx.stats.between(date.min, date.max)
        deletions = [i for i in await tx.outbox.items() if i.kind == Kind.DELETE_TOPIC]
        leftovers = [i for i in await tx.outbox.items(case_id=case.id) if i.status == OutboxStatus.PENDING]
    assert stats == counted, "the purge neither adds to nor takes from the statistics"
    [closed] = [row for row in stats if row.event is StatEvent.CASE_CLOSED]
    assert (closed.harm, closed.outcome, closed.channel, closed.count) == ("bullying", "advice", "telegram", 1)
    assert [i.payload for i in deletions] == [{"topic_id": topic}], "one topic deletion, queued once"
    assert leftovers == []
    await drained(app, tg)
    assert tg.topics(OPERATOR) == [] and tg.messages_in(OPERATOR, topic) == []
    async with app.db.transaction() as tx:
        assert await tx.outbox.items(case_id=case.id) == []  # nothing of the case's messages is kept
        assert await tx.audit.for_case(case.id) == []  # the audit keeps what was done, not whose case
        counts = await tx.audit.anonymous_counts()
    assert counts["take"] == 1 and counts["outcome"] == 1


async def test_a_parked_update_keeps_its_content_no_longer_than_retention(store, clock):
    database, sweeps = store
    async with database.transaction() as tx:
        parked = await tx.inbox.add("telegram", "9001", "tg:lane", {"message": {"text": "my secret"}})
        assert await tx.inbox.fail(parked, "KeyError", max_attempts=1)
    clock.advance(days=sweeps.settings.retention_days - 1)
    await sweeps.every_hour()
    async with database.transaction() as tx:
        assert (await tx.inbox.get(parked)).payload is not None  # kept for a retry by hand meanwhile
    clock.advance(days=2)
    await sweeps.every_hour()
    async with database.transaction() as tx:
        assert (await tx.inbox.get(parked)).payload is None


@asynccontextmanager
async def another_process(sweeps: Sweeps, clock, tmp_path: Path) -> AsyncIterator[Sweeps]:
    """A second process's sweeps over the same database."""
    other_db = Database(sweeps.settings.resolved_database_url, load_privacy(None, None, tmp_path), clock)
    await other_db.start()
    try:
        yield Sweeps(other_db, sweeps.engine, Outbox(), sweeps.settings)
    finally:
        await other_db.close()


async def test_two_processes_purging_together_purge_a_case_once(store, clock, tmp_path):
    """Each sweep must claim its row before acting, so two processes never count or delete a case twice."""
    database, sweeps = store
    async with another_process(sweeps, clock, tmp_path) as other:
        async with database.transaction() as tx:
            case = await tx.cases.create(number="424242", kind="report", channel="telegram", language="en",
                                         country="UA", consent="counsellor", category="scam", status="closed",
                                         outcome="advice", closed_at=tx.now, operator_topic_id=77,
                                         answers={"what": "secret"})
        clock.advance(days=sweeps.settings.retention_days + 1)
        await asyncio.gather(sweeps.purge_closed(), other.purge_closed())
        await asyncio.gather(sweeps.purge_closed(), other.purge_closed())
        async with database.transaction() as tx:
            assert await tx.cases.get(case.id) is None
            deletions = [i.payload for i in await tx.outbox.items() if i.kind == Kind.DELETE_TOPIC]
    assert deletions == [{"topic_id": 77}], f"topic deletion queued {len(deletions)} times"


async def test_two_processes_expiring_drafts_together_both_finish_their_hourly_sweep(store, clock, tmp_path):
    """Two processes clearing the same abandoned drafts at once: neither sweep may fail (a failure would
    skip that process's purge and housekeeping for the hour), and the child is told once."""
    database, sweeps = store
    async with another_process(sweeps, clock, tmp_path) as other:
        draft = State(lang="en", step="what", answers={"category": "scam"}).to_dict()
        async with database.transaction() as tx:
            for n in range(20):
                await tx.conversations.save(f"draft-{n}", "telegram", draft, {"chat_id": n})
        clock.advance(hours=sweeps.settings.draft_ttl_hours + 1)
        results = await asyncio.gather(sweeps.expire_drafts(), other.expire_drafts(), return_exceptions=True)
        async with database.transaction() as tx:
            states = [State.from_dict((await tx.conversations.get(f"draft-{n}")).state) for n in range(20)]
    assert all(s.expired and not s.has_draft for s in states)
    assert [type(r).__name__ for r in results if r is not None] == []


async def test_two_processes_post_one_digest_line_a_minute(store, clock, tmp_path):
    """When cards outrun the group limit, every process sweeps, and still one line a minute is posted."""
    database, sweeps = store
    async with another_process(sweeps, clock, tmp_path) as other:
        async with database.transaction() as tx:
            for n in range(int(sweeps.settings.rate_group_per_minute) + 1):
                case = await tx.cases.create(number=f"5{n:05}", kind="report", channel="telegram", language="en",
                                             country="UA", consent="counsellor", answers={"what": "x"})
                await Outbox().case_card(tx, case)

        async def lines() -> int:
            async with database.transaction() as tx:
                return sum(1 for item in await tx.outbox.items() if item.kind == Kind.GENERAL)

        await asyncio.gather(sweeps.digest(), other.digest())
        assert await lines() == 1
        clock.advance(seconds=60)
        await asyncio.gather(sweeps.digest(), other.digest())
        assert await lines() == 2
