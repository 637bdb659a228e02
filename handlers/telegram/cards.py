"""The case card staff see in a topic: what the child said, consent, status, and the buttons allowed now."""
from __future__ import annotations

from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.casework import OUTCOMES, CaseAction
from dialogs.engine import Engine

TOPIC_NAME_LIMIT = 128  # Telegram's limit for a forum topic name
SHOWN_ABOVE = frozenset({"consent", "reply_wanted"})  # the card's header lines already say these
CARD_LIMIT = 4000  # the card is one editable message (Telegram allows 4096); the rest follows it


class CaseCallback(CallbackData, prefix="c1"):
    """Versioned, short, and naming a case by its row id — never anything about the child."""

    action: str
    case: int
    arg: str = ""


def topic_name(engine: Engine, lang: str, case: Any) -> str:
    parts = [("🔴 " if case.urgent else "") + case.number, engine.say(lang, f"operator.kind.{case.kind}")]
    step = engine.render.field_step("category")
    if case.category and step:
        parts.append(engine.render.answer(lang, step, case.category))
    if case.age_group:
        parts.append(case.age_group)
    return " · ".join(parts)[:TOPIC_NAME_LIMIT]


def card_text(engine: Engine, lang: str, case: Any, holder: str) -> tuple[str, str]:
    """The card, and what did not fit in it (sent once, right after the card, never lost)."""
    text = _full_card(engine, lang, case, holder)
    if len(text) <= CARD_LIMIT:
        return text, ""
    return text[:CARD_LIMIT] + "…", "…" + text[CARD_LIMIT:]


def _full_card(engine: Engine, lang: str, case: Any, holder: str) -> str:
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
    if files:
        lines.append(f"\n{say(lang, 'operator.label.files')}: {files}")
    if case.kind == "link":
        lines.append("\n" + say(lang, "operator.notice.link_hint", report_online=engine.render.report_online(lang)))
    return "\n".join(lines)


def card_keyboard(engine: Engine, lang: str, case: Any, police_enabled: bool, closing: bool = False
                  ) -> InlineKeyboardMarkup | None:
    """Only the buttons that make sense for the case's status now."""
    def button(action: CaseAction, label: str, arg: str = "") -> InlineKeyboardButton:
        return InlineKeyboardButton(text=engine.say(lang, label),
                                    callback_data=CaseCallback(action=action.value, case=case.id, arg=arg).pack())

    if closing:
        rows = [[button(CaseAction.OUTCOME, f"operator.outcome.{outcome}", outcome)] for outcome in OUTCOMES]
        rows.append([button(CaseAction.CANCEL, "operator.button.cancel")])
        return InlineKeyboardMarkup(inline_keyboard=rows)
    urgent = [] if case.urgent else [button(CaseAction.URGENT, "operator.button.urgent")]
    close = button(CaseAction.CLOSE, "operator.button.close")
    if case.status == "new":
        rows = [[button(CaseAction.ACCEPT, "operator.button.accept"), button(CaseAction.SPAM, "operator.button.spam")],
                [button(CaseAction.TAKE, "operator.button.take")] + urgent]
    elif case.status == "accepted":
        rows = [[button(CaseAction.TAKE, "operator.button.take")] + urgent, [close]]
    elif case.status == "assigned":
        escalate = [button(CaseAction.ESCALATE, "operator.button.escalate")] if (
            police_enabled and case.consent == "police" and case.police_topic_id is None) else []
        convert = [button(CaseAction.CONVERT, "operator.button.convert")] if case.kind == "consultation" else []
        rows = [escalate + urgent, convert, [close]]
    elif case.status == "escalated":
        rows = [[close]]
    else:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[row for row in rows if row])
