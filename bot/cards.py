"""The case card staff see in a topic: what the child said, consent, status, and the buttons allowed now.

Channel-agnostic: the Telegram transport shows it in a forum topic, the console prints it.
"""
from __future__ import annotations

from dataclasses import dataclass

from bot.permissions import CaseAction
from bot.transport import Rows
from dialogs.engine import Engine
from dialogs.inert import inert
from dialogs.model import DANGER_NOTE, Button
from dialogs.regions import region_of
from storage import Case, CaseKind, CaseStatus, Consent, Outcome

TOPIC_NAME_LIMIT = 128  # Telegram's limit for a forum topic name
SHOWN_ABOVE = frozenset({"consent", "reply_wanted"})  # the card's header lines already say these
CARD_LIMIT = 4000  # the card is one editable message (Telegram allows 4096); the rest follows it
CARD_PREFIX = "c1"  # versioned: a card's buttons stay tappable across releases


@dataclass(frozen=True, slots=True)
class CardPress:
    """A card button: an action on a case named by its row id — never anything about the child."""

    action: CaseAction
    case_id: int
    argument: str = ""

    def pack(self) -> str:
        return f"{CARD_PREFIX}:{self.action.value}:{self.case_id}:{self.argument}"

    @classmethod
    def parse(cls, data: str | None) -> CardPress | None:
        """The press, or None for anything that is not a card button of this version."""
        parts = (data or "").split(":")
        if len(parts) != 4 or parts[0] != CARD_PREFIX or not parts[2].isdigit():
            return None
        try:
            return cls(CaseAction(parts[1]), int(parts[2]), parts[3])
        except ValueError:
            return None


def topic_name(engine: Engine, lang: str, case: Case) -> str:
    parts = [("🔴 " if case.urgent else "") + case.number, engine.say(lang, f"operator.kind.{case.kind}")]
    step = engine.render.field_step("category")
    if case.category and step:
        parts.append(engine.render.staff_answer(lang, step, case.category))
    if case.age_group:
        parts.append(case.age_group)
    return " · ".join(parts)[:TOPIC_NAME_LIMIT]


def card_text(engine: Engine, lang: str, case: Case, holder: str) -> tuple[str, str]:
    """The card, and what did not fit in it (sent once, right after the card, never lost)."""
    text = _full_card(engine, lang, case, holder)
    if len(text) <= CARD_LIMIT:
        return text, ""
    return text[:CARD_LIMIT] + "…", "…" + text[CARD_LIMIT:]


def _full_card(engine: Engine, lang: str, case: Case, holder: str) -> str:
    say = engine.say
    status = say(lang, f"operator.status.{case.status}", alias=holder,
                 outcome=say(lang, f"operator.outcome.{case.outcome}") if case.outcome else "")
    header = f"{say(lang, 'operator.label.case')} {case.number} · {say(lang, f'operator.kind.{case.kind}')}"
    if case.urgent:
        header = f"{say(lang, 'operator.label.urgent')} · {header}"
    answers = engine.render.staff_summary(lang, case.answers, skip=SHOWN_ABOVE)
    files = len(case.answers.get("media") or [])
    lines = [
        header,
        f"{say(lang, 'operator.label.status')}: {status}",
        f"{say(lang, 'operator.label.consent')}: {say(lang, f'operator.consent.{case.consent}')}",
        f"{say(lang, 'operator.label.reply')}: {say(lang, 'operator.reply.yes' if case.reply_wanted else 'operator.reply.no')}",
        f"{say(lang, 'operator.label.channel')}: {case.channel} · {say(lang, 'operator.label.language')}: {case.language}",
        f"{say(lang, 'operator.label.received')}: {case.created_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"{say(lang, 'operator.label.answers')}:",
        answers,
    ]
    if engine.flows.ask_region:  # regions have chats of their own: say whose case this is
        lines.insert(5, f"{say(lang, 'operator.label.region')}: {region_name(engine, lang, case)}")
    if case.answers.get(DANGER_NOTE):  # typed where they answered no question, so in no line above
        lines.append(f"\n{say(lang, 'operator.label.danger_words')}: " + " / ".join(
            inert(words) for words in case.answers[DANGER_NOTE]))
    if files:
        lines.append(f"\n{say(lang, 'operator.label.files')}: {files}")
    if case.kind is CaseKind.LINK:
        lines.append("\n" + say(lang, "operator.notice.link_hint", report_online=engine.render.report_online(lang)))
    return "\n".join(lines)


def region_name(engine: Engine, lang: str, case: Case) -> str:
    """The case's region in staff words ("not said" for none, another place, or a region since removed)."""
    region = region_of(engine.content, case.country, case.region)
    return region.name(lang) if region is not None else engine.say(lang, "operator.region.none")


def card_buttons(engine: Engine, lang: str, case: Case, police_enabled: bool, closing: bool = False) -> Rows:
    """Only the buttons that make sense for the case's status now."""
    def button(action: CaseAction, label: str, arg: str = "") -> Button:
        return Button(engine.say(lang, label), CardPress(action, case.id, arg).pack())

    if closing:
        rows = [[button(CaseAction.OUTCOME, f"operator.outcome.{outcome}", outcome.value)] for outcome in Outcome]
        rows.append([button(CaseAction.CANCEL, "operator.button.cancel")])
        return tuple(tuple(row) for row in rows)
    urgent = [] if case.urgent else [button(CaseAction.URGENT, "operator.button.urgent")]
    close = button(CaseAction.CLOSE, "operator.button.close")
    if case.status is CaseStatus.NEW:
        rows = [[button(CaseAction.ACCEPT, "operator.button.accept"), button(CaseAction.SPAM, "operator.button.spam")],
                [button(CaseAction.TAKE, "operator.button.take")] + urgent]
    elif case.status is CaseStatus.ACCEPTED:
        rows = [[button(CaseAction.TAKE, "operator.button.take")] + urgent, [close]]
    elif case.status is CaseStatus.ASSIGNED:
        escalate = [button(CaseAction.ESCALATE, "operator.button.escalate")] if (
            police_enabled and case.consent == Consent.POLICE and case.police_topic_id is None) else []
        convert = [button(CaseAction.CONVERT, "operator.button.convert")] if case.kind is CaseKind.CONSULTATION else []
        rows = [escalate + urgent, convert, [close]]
    elif case.status is CaseStatus.ESCALATED:
        rows = [[close]]
    else:
        return ()
    return tuple(tuple(row) for row in rows if row)
