"""Recording: each step of a case counts once, by coarse values only, and nothing links back to it."""
from __future__ import annotations

from typing import Any

from datetime import timedelta

from sqlalchemy import inspect

from bot.statistics.record import (
    record_answer, record_case_change, record_checkin_answered, record_rating, record_submitted, record_turn,
)
from dialogs.model import State
from storage import Database, StatEvent
from tests import test_storage as shared
from tests.test_storage import SECRET, START, FakeClock, new_case

clock, database_url, db, privacy = shared.clock, shared.database_url, shared.db, shared.privacy


async def events(db: Database) -> dict[StatEvent, int]:
    async with db.transaction() as tx:
        counts = await tx.stats.between(START.date(), START.date() + timedelta(days=30))
    found: dict[StatEvent, int] = {}
    for count in counts:
        found[count.event] = found.get(count.event, 0) + count.count
    return found


async def test_a_case_counts_each_step_once_with_minutes_from_consent(db: Database, clock: FakeClock) -> None:
    case_id = await new_case(db, "900001", category="grooming", age_group="no_say", consent="police",
                             reply_wanted=True, answers={"what": SECRET})
    async with db.transaction() as tx:
        case = await tx.cases.get(case_id)
        await record_submitted(tx, case)
    clock.now = START + timedelta(minutes=42)
    async with db.transaction() as tx:
        await record_case_change(tx, case, {"status": "assigned", "assignee_id": 5, "accepted_at": tx.now})
        case = await tx.cases.update(case_id, status="assigned", accepted_at=tx.now)
        for _ in range(2):
            await tx.audit.add(case_id, "Olena", 5, "answer", "operator")
            await record_answer(tx, case)
        await record_case_change(tx, case, {"status": "assigned", "assignee_id": 6})  # taken over: not again
        await record_case_change(tx, case, {"status": "closed", "outcome": "advice", "closed_at": tx.now})
        case = await tx.cases.update(case_id, checkin_sent=True, checkin_due_at=tx.now)
        for _ in range(2):
            await record_checkin_answered(tx, case)
            case = await tx.cases.get(case_id)
        await record_rating(tx, case, 3)
        counts = await tx.stats.between(START.date(), START.date())
    assert await events(db) == {
        StatEvent.CASE_SUBMITTED: 1, StatEvent.POLICE_CONSENT: 1, StatEvent.CASE_ACCEPTED: 1,
        StatEvent.CASE_TAKEN: 1, StatEvent.FIRST_ANSWER: 1, StatEvent.CASE_CLOSED: 1,
        StatEvent.CHECKIN_ANSWERED: 1, StatEvent.RATED: 1,
    }
    accepted = next(c for c in counts if c.event is StatEvent.CASE_ACCEPTED)
    assert (accepted.minutes, accepted.harm, accepted.age_group, accepted.kind) == (42, "grooming", None, "report")
    assert next(c for c in counts if c.event is StatEvent.RATED).outcome == "good"


async def test_a_conversation_and_a_report_begun_are_counted_from_the_dialog(db: Database) -> None:
    async with db.transaction() as tx:
        fresh = State(lang="lv")
        await record_turn(tx, None, fresh, "viber")
        chosen = State(lang="lv", answers={"category": "hate"})
        await record_turn(tx, fresh, chosen, "viber")
        await record_turn(tx, chosen, State(lang="lv", answers={"category": "hate", "what": SECRET}), "viber")
        counts = await tx.stats.between(START.date(), START.date())
    assert await events(db) == {StatEvent.CONVERSATION_STARTED: 1, StatEvent.REPORT_BEGUN: 1}
    assert {(c.channel, c.language, c.harm) for c in counts} == {("viber", "lv", None), ("viber", "lv", "hate")}


async def test_statistics_hold_no_id_no_text_and_nothing_finer_than_the_day(db: Database) -> None:
    case_id = await new_case(db, "900002", category="bullying", answers={"what": SECRET})
    async with db.transaction() as tx:
        await record_submitted(tx, await tx.cases.get(case_id))

    def read(connection: Any) -> tuple[list[str], list[Any]]:
        names = [column["name"] for column in inspect(connection).get_columns("stat_counts")]
        return names, connection.exec_driver_sql("SELECT * FROM stat_counts").all()

    names, rows = await db.run_sync(read)
    assert set(names) == {"day", "event", "region", "channel", "language", "age_group", "kind", "harm", "outcome",
                          "urgent", "minutes", "count"}
    assert all("900002" not in str(row) and SECRET not in str(row) for row in rows)
    assert [row[0] for row in rows] == [START.date().isoformat()]
