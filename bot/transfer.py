"""`/transfer REGION`: a case goes on in another region's operator chat.

In one transaction: the case takes the new region (so every later item of it goes to that region's
chat, bot/staff_chats.py), forgets its old topic, gets a new card there with a summary of what happened
so far, and the audit log records who moved it from where to where. The child is not disturbed. The
old topic is told where the case went and closed by the caller once this commits (a courtesy call).
The summary is the case's history in staff words (the audit: who did what, when; how many messages went
each way): the words of the conversation are kept only in the old topic, never in the database (rule 4).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.casework import Actor
from bot.cards import region_name
from bot.outbox import Outbox
from bot.permissions import CaseAction, may
from bot.staff_chats import StaffChats
from dialogs.engine import Engine
from storage import FINISHED, Case, Target, Transaction

MAX_SUMMARY_LINES = 30


class TransferRefused(Exception):
    """Nothing changed; the staff text `key` (with `slots`) says why."""

    def __init__(self, key: str, **slots: Any) -> None:
        super().__init__(key)
        self.key, self.slots = key, slots


@dataclass(frozen=True, slots=True)
class Moved:
    case: Case  # as it is now, in its new region
    notice: str  # for the old topic: where the case went
    old_topics: dict[Target, int] = field(default_factory=dict)  # topics to close, by target


async def transfer(tx: Transaction, engine: Engine, outbox: Outbox, chats: StaffChats, actor: Actor, case: Case,
                   argument: str) -> Moved:
    """Move `case` to the region named by `argument`; TransferRefused if that cannot or may not be."""
    lang = engine.default_language
    with_chats = ", ".join(sorted(chats.operator_regions)) or "—"
    if not may(actor.role, actor.user_id, CaseAction.TRANSFER, case, Target.OPERATOR):
        raise TransferRefused("operator.transfer.refused")
    if case.status in FINISHED:
        raise TransferRefused("operator.transfer.closed")
    key = argument.strip().lower()
    region = engine.content.regions.get(case.country, {}).get(key)
    if not key:
        raise TransferRefused("operator.transfer.usage", list=with_chats)
    if region is None:
        raise TransferRefused("operator.transfer.unknown", region=argument.strip()[:32], list=with_chats)
    if chats.route(Target.OPERATOR, key) is None:
        raise TransferRefused("operator.transfer.no_chat", region=region.name(lang), list=with_chats)
    if chats.route(Target.OPERATOR, case.region) == key:
        raise TransferRefused("operator.transfer.same", region=region.name(lang))
    summary = await _summary(tx, engine, case)
    came_from = region_name(engine, lang, case)
    # Each staff chat whose route changes starts afresh there: its old topic is closed, a new one opened.
    old_topics = {target: topic for target in (Target.OPERATOR, Target.POLICE)
                  if (topic := case.topic(target).topic_id) is not None
                  and chats.route(target, case.region) != chats.route(target, key)}
    changes: dict[str, Any] = {"region": key}
    for target in old_topics:
        prefix = "operator" if target is Target.OPERATOR else "police"
        changes |= {f"{prefix}_topic_id": None, f"{prefix}_card_message_id": None}
    moved = await tx.cases.update(case.id, **changes)
    for target in old_topics:
        await outbox.case_card(tx, moved, target)
        await outbox.notice(tx, moved, "operator.transfer.arrived", target=target, reason=came_from,
                            alias=actor.alias, summary=summary)
    await tx.audit.add(case.id, actor.alias, actor.user_id, CaseAction.TRANSFER.value,
                       f"{case.region or '-'} → {key}")
    notice = engine.say(lang, "operator.transfer.moved", alias=actor.alias, region=region.name(lang))
    return Moved(moved, notice, old_topics)


async def _summary(tx: Transaction, engine: Engine, case: Case) -> str:
    """What happened to the case so far, in staff words: no word of the child's or of staff's."""
    lines = [f"{entry.at:%d.%m %H:%M} · {entry.actor_alias} · {entry.action}" for entry in await tx.audit.for_case(case.id)]
    relayed = {link.child_message_id for link in await tx.case_messages.for_case(case.id) if link.chat is Target.OPERATOR}
    if relayed:
        lines.append(engine.say(engine.default_language, "operator.transfer.child_messages", count=len(relayed)))
    return "\n".join(lines[-MAX_SUMMARY_LINES:]) or engine.say(engine.default_language, "operator.transfer.nothing_said")
