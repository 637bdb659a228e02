"""Turning content into the words a child (or staff) reads: slots, helplines, summaries, the list of cases."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dialogs.content import ButtonSpec, Content, Helpline, Step, StepKind
from dialogs.inert import inert
from dialogs.regions import help_for, hours_for
from dialogs.model import Button, Context, OpenCase, Say, State

MAX_SUMMARY_VALUE = 300
MAX_LISTED_CASES = 10  # /mycase lists the newest ten open cases


class _KeepMissing(dict):
    """An unknown slot stays visible as {name} rather than breaking the child's step (the checker
    names every text with one)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Renderer:
    def __init__(self, content: Content, country: str, static_slots: dict[str, Any]) -> None:
        self.content = content
        self.country = country if country in content.helplines else next(iter(content.helplines))
        self.static_slots = static_slots

    def text(self, lang: str, key: str, **slots: Any) -> str:
        return fill(self.content.text(lang, key), {**self.static_slots, **slots})

    def step(self, state: State, step: Step, context: Context, buttons: tuple[tuple[Button, ...], ...],
             **slots: Any) -> Say:
        """The step's message; `slots` are what the service reported (a new case's number and code)."""
        lang, key = state.lang, step.text
        case = context.case(state.case)
        if case is not None:
            slots = {"case_number": case.number, "status": self.status(lang, case), **slots}
        if step.kind is StepKind.HELPLINES:
            slots["helplines"] = self.helplines(lang, region=state.region)
        elif step.kind is StepKind.OFFICE_HOURS:
            slots["office_hours"] = self.office_hours(lang, state.region)
        elif step.kind is StepKind.SUMMARY:
            slots["summary"] = self.summary(lang, state.answers)
        elif step.kind is StepKind.CASE_STATUS:
            if case is None:
                key = step.no_case_text or key
            else:
                slots["cases"] = "\n".join(self.case_line(lang, each) for each in listed(context))
        if "{report_online}" in self.content.text(lang, key):
            slots["report_online"] = self.report_online(lang, about=set(map(str, state.answers.values())),
                                                        region=state.region)
        return Say(self.text(lang, key, **slots), buttons)

    def status(self, lang: str, case: OpenCase) -> str:
        return self.text(lang, f"status.{case.status}")

    def case_line(self, lang: str, case: OpenCase) -> str:
        kind = self.text(lang, f"mycase.kind.{case.kind}")
        chosen = _chosen(self.field_step("category"), case.category)
        if chosen is not None:
            kind = f"{kind} · {self.text(lang, chosen.label)}"
        news_on = f"{case.news_on:%d.%m.%Y}" if case.news_on else ""
        news = self.text(lang, f"mycase.news.{case.news}", date=news_on)
        return self.text(lang, "mycase.line", case_number=case.number, kind=kind, status=self.status(lang, case),
                         news=news)

    def helplines(self, lang: str, country: str | None = None, region: str | None = None) -> str:
        """The emergency numbers and helplines (a region's own lists in place of the country's)."""
        help = help_for(self.content, country or self.country, region)
        lines = [_line(h, lang) for h in help.emergency] + [""] + [_line(h, lang) for h in help.helplines]
        return "\n".join(lines)

    def office_hours(self, lang: str, region: str | None = None) -> str:
        hours = hours_for(self.content, self.country, region)
        if hours is None:
            return ""
        days = (self.text(lang, "day.every") if len(hours.days) == 7
                else ", ".join(self.text(lang, f"day.{day}") for day in hours.days))
        return f"{days} {hours.opens:%H:%M}–{hours.closes:%H:%M}"

    def report_online(self, lang: str, country: str | None = None, about: set[str] | None = None,
                      region: str | None = None) -> str:
        """Where to report online. `about`: the child's answers; an entry meant only for some kinds of
        report (`only_for`) is shown to a child only after one of those. Staff (about=None) see all."""
        entries = help_for(self.content, country or self.country, region).report_online
        return "\n".join(_line(h, lang) for h in entries if about is None or not h.only_for or h.only_for & about)

    def summary(self, lang: str, answers: dict[str, Any], limit: int | None = MAX_SUMMARY_VALUE) -> str:
        """What the child said, one line per answered question in the order of the flow (for the child)."""
        return "\n".join(f"{self.text(lang, step.summary)}: {self.answer(lang, step, value, limit)}"
                         for step, value in self._answered(answers))

    def staff_summary(self, lang: str, answers: dict[str, Any], skip: frozenset[str] = frozenset()) -> str:
        """The same for staff, in staff words only (`operator.field.<field>` labels, `operator.value.*`
        for chosen answers), whole, and every link, domain and @handle inert so that no client opens or
        previews it."""
        lines = []
        for step, value in self._answered(answers):
            if step.field in skip:
                continue
            label = self.text(lang, f"operator.field.{step.field}")
            lines.append(f"{label}: {inert(self.staff_answer(lang, step, value))}")  # never a live link
        return "\n".join(lines)

    def staff_answer(self, lang: str, step: Step, value: Any) -> str:
        if isinstance(value, dict) and "voice" in value:
            return self.text(lang, "operator.value.voice")
        button = _chosen(step, value)
        return self.text(lang, f"operator.value.{button.label}") if button else str(value)

    def _answered(self, answers: dict[str, Any]) -> Iterator[tuple[Step, Any]]:
        seen: set[str] = set()
        for step in self.content.steps.values():
            if step.summary and step.field and step.field in answers and step.field not in seen:
                seen.add(step.field)
                yield step, answers[step.field]

    def answer(self, lang: str, step: Step, value: Any, limit: int | None = MAX_SUMMARY_VALUE) -> str:
        if isinstance(value, dict) and "voice" in value:
            return self.text(lang, "summary.voice")
        button = _chosen(step, value)
        if button is not None:
            return self.text(lang, button.label)
        text = str(value)
        return text if limit is None or len(text) <= limit else text[:limit] + "…"

    def field_step(self, field: str) -> Step | None:
        return next((s for s in self.content.steps.values() if s.field == field and s.summary), None)


def listed(context: Context) -> tuple[OpenCase, ...]:
    """The open cases /mycase shows and offers to pick, oldest first."""
    return context.open_cases[-MAX_LISTED_CASES:]


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


def _chosen(step: Step | None, value: Any) -> ButtonSpec | None:
    buttons = step.buttons if step is not None else ()
    return next((b for row in buttons for b in row if b.value is not None and b.value == value), None)


def _line(helpline: Helpline, lang: str) -> str:
    name = helpline.name.get(lang) or next(iter(helpline.name.values()), "")
    return f"• {name}: {helpline.phone or helpline.url}"
