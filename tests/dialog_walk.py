"""Driving the dialog engine like a child, and exploring every step any content offers."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from dialogs.actions import (
    Action, CaseSubmitted, Outcome, ReceiptChecked, ReceiptOutcome, Reconnect, SubmitCase,
)
from dialogs.content import InputKind, StepKind
from dialogs.engine import Engine
from dialogs.model import Context, EventKind, Incoming, MediaKind, MediaRef, OpenCase, Say, State

CASE = OpenCase("111111", "assigned", True, "bullying")
SOME_LINK = "https://example.com/a-page"


def run(engine: Engine, state: State | None, event: Incoming, context: Context = Context(),
        case_number: str = "222222", receipt: ReceiptOutcome = ReceiptOutcome.NOT_FOUND) -> Outcome:
    """One event as the service would run it: the engine's requests answered as the service would."""
    outcome = engine.handle(state, event, context)
    actions: tuple[Action, ...] = outcome.actions
    for action in outcome.actions:
        if isinstance(action, SubmitCase):
            result = engine.handle(outcome.state, CaseSubmitted(case_number, "sun-moon-star"), context)
        elif isinstance(action, Reconnect):
            found = None if receipt is ReceiptOutcome.NOT_FOUND else CASE.number
            result = engine.handle(outcome.state, ReceiptChecked(receipt, found), context)
        else:
            continue
        outcome, actions = result, actions + result.actions
    return Outcome(outcome.state, actions)


class Walk:
    """A child pressing buttons by their label's text key, typing, sending files; keeps the latest state."""

    def __init__(self, engine: Engine, context: Context = Context(), lang: str = "en") -> None:
        self.engine, self.context, self.lang = engine, context, lang
        self.state: State | None = None
        self.actions: tuple = ()
        self.receipt = ReceiptOutcome.NOT_FOUND

    def do(self, kind: EventKind, text: str = "", media: MediaRef | None = None) -> tuple:
        outcome = run(self.engine, self.state, Incoming(kind, text, media, self.lang), self.context,
                      receipt=self.receipt)
        self.state, self.actions = outcome.state, outcome.actions
        return self.actions

    def command(self, name: str) -> tuple:
        return self.do(EventKind.COMMAND, name)

    def text(self, text: str) -> tuple:
        return self.do(EventKind.TEXT, text)

    def photo(self, file: str = "file-1", group: str | None = None) -> tuple:
        return self.do(EventKind.MEDIA, media=MediaRef(MediaKind.PHOTO, file, 5, group))

    def press(self, label_key: str, **slots: str) -> tuple:
        label = self.engine.say(self.state.lang, label_key, **slots)
        for say in reversed(self.says):
            for row in say.buttons:
                for button in row:
                    if button.label == label:
                        return self.do(EventKind.BUTTON, button.payload)
        raise AssertionError(f"no button {label!r} in {[s.text[:40] for s in self.says]}")

    def labels(self) -> list[str]:
        return [button.label for say in self.says for row in say.buttons for button in row]

    @property
    def says(self) -> list[Say]:
        return [action for action in self.actions if isinstance(action, Say)]

    @property
    def step(self) -> str | None:
        return self.state.step

    def of(self, kind: type) -> list:
        return [action for action in self.actions if isinstance(action, kind)]


@dataclass(frozen=True)
class Sample:
    """A child standing at a step: the state, what they were last shown, and what the service knows."""

    state: State
    said: tuple[Say, ...]
    context: Context


CONTEXTS = (Context(), Context((CASE,)), Context(online=False))


def explore(engine: Engine, contexts: tuple[Context, ...] = CONTEXTS) -> tuple[dict[str, Sample], dict[str, set[str]]]:
    """Press every button and give every kind of answer, breadth first, from /start: one sample of each
    step reached and the steps each step leads to. States count as the same when they stand at the same
    step with the same answers to everything a route asks about."""
    asked = {name for step in engine.content.steps.values() for route in step.routes for name in route.when}
    samples: dict[str, Sample] = {}
    edges: dict[str, set[str]] = {}
    queue: deque[Sample] = deque()
    visited: set[tuple] = set()
    for context in contexts:
        start = run(engine, None, Incoming(EventKind.COMMAND, "start"), context)
        queue.append(Sample(start.state, _says(start), context))
        for outside in (engine.rating_buttons("en"), engine.convert_buttons("en")):  # buttons sent by the service
            outcome = run(engine, start.state, Incoming(EventKind.BUTTON, outside[0][0].payload), context)
            queue.append(Sample(outcome.state, _says(outcome), context))
        danger = run(engine, start.state, Incoming(EventKind.TEXT, next(iter(engine.content.crisis_words.values()))[0]),
                     context)
        queue.append(Sample(danger.state, _says(danger), context))
    while queue:
        sample = queue.popleft()
        state = sample.state
        mark = (state.step, sample.context, state.has_draft,
                tuple(state.answers.get(name) for name in sorted(asked)))
        if mark in visited:
            continue
        visited.add(mark)
        samples.setdefault(state.step, sample)
        for event in _answers(engine, sample):
            outcome = run(engine, state, event, sample.context)
            edges.setdefault(state.step, set()).add(outcome.state.step)
            queue.append(Sample(outcome.state, _says(outcome), sample.context))
    return samples, edges


def _says(outcome: Outcome) -> tuple[Say, ...]:
    return tuple(action for action in outcome.actions if isinstance(action, Say))


def _answers(engine: Engine, sample: Sample) -> list[Incoming]:
    """Every button on the last message, and a fitting answer for a step that takes typed input."""
    events = [Incoming(EventKind.BUTTON, button.payload)
              for say in sample.said[-1:] for row in say.buttons for button in row]
    step = engine.content.steps.get(sample.state.step or "")
    if step is not None and step.input in (InputKind.TEXT, InputKind.ANY) and step.kind is not StepKind.RECEIPT:
        events.append(Incoming(EventKind.TEXT, SOME_LINK if step.validate == "link" else "Something happened."))
    if step is not None and step.input in (InputKind.MEDIA, InputKind.ANY):
        events.append(Incoming(EventKind.MEDIA, media=MediaRef(MediaKind.PHOTO, "shot", 7)))
    return events
