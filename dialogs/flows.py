"""Content prepared for running: what each turn of the engine reads, worked out once per (re)load."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dialogs.content import Content, Step, StepKind
from dialogs.crisis import CrisisMatcher
from dialogs.regions import Region
from dialogs.render import Renderer
from dialogs.steps import DETOURS

# Steps of a report flow where typed words still belong to the child, not to the report being written.
_OUTSIDE_THE_DRAFT = frozenset({StepKind.SUBMIT, StepKind.DISCARD, StepKind.RELAY, StepKind.ROUTE})


@dataclass(frozen=True, slots=True)
class Flows:
    content: Content
    render: Renderer
    crisis: CrisisMatcher
    default_language: str
    # Where a report (or a question, or a link report) is being written: every step of a flow file
    # that has a question keeping an answer, except the screens after it is sent or deleted and its
    # relay steps. What a child types there belongs to that report and never goes to a counsellor;
    # leaving it with answers kept is what Stop and "continue where you stopped" are about.
    writing_steps: frozenset[str]
    # The country's regions, in the file's order; asked about only when one has a staff chat of its own.
    regions: tuple[Region, ...] = ()
    ask_region: bool = False

    @classmethod
    def prepare(cls, content: Content, country: str, default_language: str, slots: dict[str, Any],
                regions_with_chats: frozenset[str] = frozenset()) -> Flows:
        language = default_language if default_language in content.texts else content.languages[0]
        report_flows = {step.flow for step in content.steps.values() if _keeps_answers(step)}
        writing = frozenset(
            step.id for step in content.steps.values()
            if step.flow in report_flows and step.kind not in _OUTSIDE_THE_DRAFT and step.id not in DETOURS
        )
        regions = tuple(content.regions.get(country, {}).values())
        ask = any(region.key in regions_with_chats for region in regions)
        return cls(content, Renderer(content, country, slots), CrisisMatcher(content.crisis_words), language, writing,
                   regions, ask)

    def say(self, lang: str, key: str, **slots: Any) -> str:
        return self.render.text(lang, key, **slots)

    def is_writing(self, step_id: str | None) -> bool:
        return step_id in self.writing_steps


def _keeps_answers(step: Step) -> bool:
    return bool(step.field) or step.kind is StepKind.SUMMARY
