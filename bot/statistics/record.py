"""Recording statistics as things happen: one counter more, in the transaction of the change itself.

Only coarse values are kept (the day, region, channel, language, age group, kind, kind of harm,
outcome, urgency) and whole minutes for the three response times; never a text, an id, a case number,
a receipt or a time finer than the day. The counters outlive the retention purge and /forget: they
hold nothing that leads back to a child (README, "Statistics").
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dialogs.model import State
from dialogs.payloads import RATINGS
from dialogs.regions import NoRegion
from storage import Case, CaseStatus, StatEvent, Transaction

NOT_SAID = frozenset({"no_say"})  # the child chose not to say: counted with those never asked
ANSWER = "answer"  # the audit action of a staff message that reached the child (bot/casework.py)


async def record(tx: Transaction, event: StatEvent, case: Case, *, minutes: int | None = None,
                 outcome: str | None = None) -> None:
    """Count `event` for `case` today."""
    await tx.stats.count(
        tx.now.date(), event, urgent=case.urgent, minutes=minutes, outcome=outcome,
        region=case.region, channel=case.channel, language=case.language,
        age_group=None if case.age_group in NOT_SAID else case.age_group,
        kind=str(case.kind), harm=harm_of(case),
    )


def harm_of(case: Case) -> str | None:
    """A report's kind of harm, or the kind of content of a link report (both are button values)."""
    return case.category or case.answers.get("link_kind")


def minutes_since(start: datetime, now: datetime) -> int:
    """Whole minutes between consent (the case's creation) and now."""
    return max(0, int((now - start).total_seconds() // 60))


async def record_submitted(tx: Transaction, case: Case) -> None:
    """A report sent, a question asked or a link reported; and whether the child agreed to police."""
    await record(tx, StatEvent.CASE_SUBMITTED, case)
    if case.consent == "police":
        await record(tx, StatEvent.POLICE_CONSENT, case)


async def record_case_change(tx: Transaction, case: Case, changes: Mapping[str, Any]) -> None:
    """What staff are about to change on `case` (the columns and their new values), as events."""
    status, since = changes.get("status"), minutes_since(case.created_at, tx.now)
    if changes.get("accepted_at") is not None and case.accepted_at is None:
        await record(tx, StatEvent.CASE_ACCEPTED, case, minutes=since)
    if status == case.status:
        return
    if status == CaseStatus.ASSIGNED:
        await record(tx, StatEvent.CASE_TAKEN, case)
    elif status == CaseStatus.ESCALATED:
        await record(tx, StatEvent.ESCALATED, case)
    elif status == CaseStatus.CLOSED:
        await record(tx, StatEvent.CASE_CLOSED, case, minutes=since, outcome=changes.get("outcome"))
    elif status == CaseStatus.SPAM:
        await record(tx, StatEvent.SPAM, case)


async def record_answer(tx: Transaction, case: Case) -> None:
    """After a staff answer reached the child's queue (and its audit entry was written): the first counts."""
    actions = [entry.action for entry in await tx.audit.for_case(case.id)]
    if actions.count(ANSWER) == 1:
        await record(tx, StatEvent.FIRST_ANSWER, case, minutes=minutes_since(case.created_at, tx.now))


async def record_turn(tx: Transaction, before: State | None, after: State, channel: str) -> None:
    """A child's step: a new conversation, or a report begun (a kind of harm chosen in a fresh draft)."""
    if before is None:
        await tx.stats.count(tx.now.date(), StatEvent.CONVERSATION_STARTED, channel=channel, language=after.lang)
    category = after.answers.get("category")
    if category and not (before and before.answers.get("category")):
        await tx.stats.count(tx.now.date(), StatEvent.REPORT_BEGUN, channel=channel, language=after.lang,
                             harm=str(category), region=None if after.region in set(NoRegion) else after.region,
                             kind="report")


async def record_checkin_answered(tx: Transaction, case: Case | None) -> None:
    """A child who got a check-in writes again: counted once, by clearing the check-in's due time
    (nothing reads it once the check-in is sent)."""
    if case is None or not case.checkin_sent or case.checkin_due_at is None:
        return
    await tx.cases.update(case.id, checkin_due_at=None)
    await record(tx, StatEvent.CHECKIN_ANSWERED, case)


async def record_rating(tx: Transaction, case: Case, score: int) -> None:
    """The child's one-tap rating of the help, as its key (good, ok, bad)."""
    await record(tx, StatEvent.RATED, case, outcome=RATINGS[score].rsplit(".", 1)[-1])
