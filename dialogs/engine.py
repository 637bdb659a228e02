"""The dialog state machine: (state, event, context) -> (new state, actions). Pure: no I/O."""
from __future__ import annotations

from typing import Any

from dialogs.content import Content, StepKind
from dialogs.crisis import CrisisMatcher
from dialogs.model import Button, Context, Incoming, Outcome, State
from dialogs.payloads import CONVERT_STEP, RATING_STEP, RATINGS, payload
from dialogs.render import Renderer
from dialogs.turn import Turn


class Engine:
    """Runs the content's flows for one conversation event at a time."""

    def __init__(self, content: Content, country: str, default_language: str,
                 draft_hours: int = 72, retention_days: int = 90) -> None:
        self.country, self.wanted_language = country, default_language
        self.slots = {"draft_hours": draft_hours, "retention_days": retention_days}
        self.use(content)

    def use(self, content: Content) -> None:
        """Switch to (re)loaded content; conversations carry on, a removed step falls back kindly."""
        self.content = content
        wanted = self.wanted_language
        self.default_language = wanted if wanted in content.texts else content.languages[0]
        self.render = Renderer(content, self.country, self.slots)
        self.crisis = CrisisMatcher(content.crisis_words)
        self._draft_steps = {s.id for s in content.steps.values() if s.field or s.kind is StepKind.SUMMARY}

    # -- public -----------------------------------------------------------------------------------

    def new_state(self, language_hint: str | None = None) -> State:
        hint = (language_hint or "").split("-")[0].lower()
        return State(lang=hint if hint in self.content.texts else self.default_language)

    def handle(self, state: State | None, event: Incoming, context: Context = Context()) -> Outcome:
        """Apply one event; the given state is not changed."""
        turn = Turn(self, state.copy() if state else self.new_state(event.language_hint), context)
        turn.run(event, fresh=state is None)
        return Outcome(turn.state, tuple(turn.actions))

    def show(self, state: State, step_id: str, context: Context = Context()) -> Outcome:
        """Go to a step as if the child had pressed a button leading there (used by the service)."""
        turn = Turn(self, state.copy(), context)
        turn.go(step_id)
        return Outcome(turn.state, tuple(turn.actions))

    def say(self, lang: str, key: str, **slots: Any) -> str:
        return self.render.text(lang, key, **slots)

    def rating_buttons(self, lang: str) -> tuple[tuple[Button, ...], ...]:
        return (tuple(Button(self.say(lang, key), payload(RATING_STEP, score)) for score, key in RATINGS.items()),)

    def convert_buttons(self, lang: str) -> tuple[tuple[Button, ...], ...]:
        return ((Button(self.say(lang, "convert.yes"), payload(CONVERT_STEP, "yes")),),
                (Button(self.say(lang, "convert.no"), payload(CONVERT_STEP, "no")),))

    def is_draft_step(self, step_id: str | None) -> bool:
        return step_id in self._draft_steps
