"""`/queue` in a staff chat's General topic: one message with every case of that chat still open:
waiting for moderation, waiting for a counsellor, being worked on (and by whom: aliases only), each
urgent first and then oldest first, with its age against the SLA."""
from __future__ import annotations

from datetime import datetime

from bot.staff_chats import ChatPlace, StaffChats
from dialogs.engine import Engine
from storage import Case, CaseStatus, Target, Transaction

READ_AT_MOST = 1000  # open cases read; more than that is a crisis of its own, and the count says so
SHOWN_PER_PART = 25  # lines per part: the message stays well under Telegram's 4096 characters
PARTS = (("operator.queue.moderation", frozenset({CaseStatus.NEW})),
         ("operator.queue.counsellor", frozenset({CaseStatus.ACCEPTED})),
         ("operator.queue.held", frozenset({CaseStatus.ASSIGNED, CaseStatus.ESCALATED})))


async def queue_text(tx: Transaction, engine: Engine, chats: StaffChats, place: ChatPlace, sla_minutes: int,
                     urgent_sla_minutes: int) -> str:
    """The queue of the chat `place` as staff read it."""
    lang, say = engine.default_language, engine.say
    cases = [case for case in await tx.cases.in_progress(READ_AT_MOST) if _here(case, chats, place)]
    if not cases:
        return say(lang, "operator.queue.empty")
    aliases: dict[int, str] = {}
    for case in cases:
        if case.assignee_id is not None and case.assignee_id not in aliases:
            member = await tx.staff.get(case.assignee_id)
            aliases[case.assignee_id] = member.alias if member else "Admin"
    parts = []
    for title, statuses in PARTS:
        part = [case for case in cases if case.status in statuses]  # urgent first, then oldest (in_progress)
        if not part:
            continue
        lines = [say(lang, title, count=len(part))]
        for case in part[:SHOWN_PER_PART]:
            waiting = CaseStatus.ASSIGNED not in statuses
            lines.append(_line(engine, case, tx.now, urgent_sla_minutes if case.urgent else sla_minutes, waiting,
                               aliases.get(case.assignee_id or 0)))
        if len(part) > SHOWN_PER_PART:
            lines.append(say(lang, "operator.queue.more", count=len(part) - SHOWN_PER_PART))
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _here(case: Case, chats: StaffChats, place: ChatPlace) -> bool:
    """A case is in this chat's queue when its items go to this chat (police: once it has a topic there)."""
    if place.target is Target.POLICE and case.police_topic_id is None:
        return False
    return chats.route(place.target, case.region) == place.region


def _line(engine: Engine, case: Case, now: datetime, sla: int, waiting: bool, alias: str | None) -> str:
    lang, say = engine.default_language, engine.say
    minutes = max(0, int((now - case.created_at).total_seconds() // 60))
    return say(lang, "operator.queue.line", urgent="🔴 " if case.urgent else "", case_number=case.number,
               minutes=minutes, sla=sla, late=say(lang, "operator.queue.late") if waiting and minutes > sla else "",
               holder=say(lang, "operator.queue.holder", alias=alias) if alias else "")
