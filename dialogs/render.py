"""Turning content into the words a child reads: slots, helplines, the summary of a report."""
from __future__ import annotations

from typing import Any

from dialogs.content import Content, Helpline, Step, StepKind
from dialogs.inert import inert
from dialogs.model import Button, Context, Say, State

MAX_SUMMARY_VALUE = 300


class _KeepMissing(dict):
    """Leaves unknown slots as they are, for the service to fill later (e.g. {case_number})."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Renderer:
    def __init__(self, content: Content, country: str, static_slots: dict[str, Any]) -> None:
        self.content = content
        self.country = country if country in content.helplines else next(iter(content.helplines))
        self.static_slots = static_slots

    def text(self, lang: str, key: str, **slots: Any) -> str:
        return fill(self.content.text(lang, key), {**self.static_slots, **slots})

    def step(self, state: State, step: Step, context: Context, buttons: tuple[tuple[Button, ...], ...]) -> Say:
        lang, key, slots = state.lang, step.text, {}
        if step.kind is StepKind.HELPLINES:
            slots["helplines"] = self.helplines(lang)
        elif step.kind is StepKind.OFFICE_HOURS:
            slots["office_hours"] = self.office_hours(lang)
        elif step.kind is StepKind.SUMMARY:
            slots["summary"] = self.summary(lang, state.answers)
        elif step.kind is StepKind.CASE_STATUS:
            case = context.open_case
            if case is None:
                key = step.no_case_text or key
            else:
                slots = {"case_number": case.number, "status": self.text(lang, f"status.{case.status}")}
        if "{report_online}" in self.content.text(lang, key):
            slots["report_online"] = self.report_online(lang)
        return Say(self.text(lang, key, **slots), buttons)

    def helplines(self, lang: str, country: str | None = None) -> str:
        help = self.content.helplines[country or self.country]
        lines = [_line(h, lang) for h in help.emergency] + [""] + [_line(h, lang) for h in help.helplines]
        return "\n".join(lines)

    def office_hours(self, lang: str) -> str:
        hours = self.content.office_hours.get(self.country)
        if hours is None:
            return ""
        days = (self.text(lang, "day.every") if len(hours.days) == 7
                else ", ".join(self.text(lang, f"day.{day}") for day in hours.days))
        return f"{days} {hours.opens:%H:%M}–{hours.closes:%H:%M}"

    def report_online(self, lang: str, country: str | None = None) -> str:
        return "\n".join(_line(h, lang) for h in self.content.helplines[country or self.country].report_online)

    def summary(self, lang: str, answers: dict[str, Any], limit: int | None = MAX_SUMMARY_VALUE) -> str:
        """What the child said, one line per answered question in the order of the flow (for the child)."""
        return "\n".join(f"{self.text(lang, step.summary)}: {self.answer(lang, step, value, limit)}"
                         for step, value in self._answered(answers))

    def staff_summary(self, lang: str, answers: dict[str, Any], skip: frozenset[str] = frozenset()) -> str:
        """The same for staff: whole answers, labels in the third person (`operator.field.*` where
        content has one), and every link, domain and @handle inert so that no client opens or previews it."""
        lines = []
        for step, value in self._answered(answers):
            if step.field in skip:
                continue
            key = f"operator.field.{step.field}"
            label = self.text(lang, key if key in self.content.texts[lang] else step.summary)
            text = self.answer(lang, step, value, None)
            lines.append(f"{label}: {inert(text)}")  # links, domains and @handles never live (rule 1)
        return "\n".join(lines)

    def _answered(self, answers: dict[str, Any]):
        seen: set[str] = set()
        for step in self.content.steps.values():
            if step.summary and step.field and step.field in answers and step.field not in seen:
                seen.add(step.field)
                yield step, answers[step.field]

    def answer(self, lang: str, step: Step, value: Any, limit: int | None = MAX_SUMMARY_VALUE) -> str:
        if isinstance(value, dict) and "voice" in value:
            return self.text(lang, "summary.voice")
        for row in step.buttons:
            for button in row:
                if button.value is not None and button.value == value:
                    return self.text(lang, button.label)
        text = str(value)
        return text if limit is None or len(text) <= limit else text[:limit] + "…"

    def field_step(self, field: str) -> Step | None:
        return next((s for s in self.content.steps.values() if s.field == field and s.summary), None)


def split_text(text: str, limit: int) -> list[str]:
    """Long texts go as several messages (each platform has its limit), cut at line ends where possible."""
    parts = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return parts + [text]


def fill(template: str, slots: dict[str, Any]) -> str:
    return template.format_map(_KeepMissing(slots))


def _line(helpline: Helpline, lang: str) -> str:
    name = helpline.name.get(lang) or next(iter(helpline.name.values()), "")
    return f"• {name}: {helpline.phone or helpline.url}"
