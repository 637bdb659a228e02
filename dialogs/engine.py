"""The dialog state machine: (state, event, context) -> (new state, actions). Pure: no I/O.

Events are what the child did (`Incoming`) and what the service reports back after acting on the
engine's request (`CaseSubmitted`, `SubmitRefused`, `ReceiptChecked`): every word the child reads is
rendered here, complete."""
from __future__ import annotations

from typing import Any

from dialogs.actions import Outcome, ServiceEvent
from dialogs.content import Content
from dialogs.flows import Flows
from dialogs.model import Button, Context, Incoming, State
from dialogs.payloads import RATINGS, OutsideButton, payload, with_case
from dialogs.render import Renderer
from dialogs.turn import Turn


class Engine:
    """Runs the content's flows for one conversation event at a time."""

    def __init__(self, content: Content, country: str, default_language: str,
                 draft_hours: int = 72, retention_days: int = 90,
                 regions_with_chats: frozenset[str] = frozenset()) -> None:
        """`regions_with_chats`: regions with a staff chat of their own (children are asked where they live)."""
        self.country, self.wanted_language, self.regions_with_chats = country, default_language, regions_with_chats
        self.slots = {"draft_hours": draft_hours, "retention_days": retention_days}
        self.use(content)

    def use(self, content: Content) -> None:
        """Switch to (re)loaded content; conversations carry on, a removed step falls back kindly."""
        self.flows = Flows.prepare(content, self.country, self.wanted_language, self.slots, self.regions_with_chats)

    @property
    def content(self) -> Content:
        return self.flows.content

    @property
    def render(self) -> Renderer:
        return self.flows.render

    @property
    def default_language(self) -> str:
        return self.flows.default_language

    def new_state(self, language_hint: str | None = None) -> State:
        hint = (language_hint or "").split("-")[0].lower()
        return State(lang=hint if hint in self.content.texts else self.default_language)

    def handle(self, state: State | None, event: Incoming | ServiceEvent, context: Context = Context()) -> Outcome:
        """Apply one event; the given state is not changed."""
        hint = event.language_hint if isinstance(event, Incoming) else None
        turn = Turn(self.flows, state.copy() if state else self.new_state(hint), context)
        turn.run(event, fresh=state is None)
        return Outcome(turn.state, tuple(turn.actions))

    def say(self, lang: str, key: str, **slots: Any) -> str:
        return self.flows.say(lang, key, **slots)

    def rating_buttons(self, lang: str, case_number: str | None = None) -> tuple[tuple[Button, ...], ...]:
        """The child's one-tap rating of the help (sent with the news that a case closed)."""
        return (tuple(Button(self.say(lang, key), payload(OutsideButton.RATE, with_case(str(score), case_number)))
                      for score, key in RATINGS.items()),)

    def convert_buttons(self, lang: str, case_number: str | None = None) -> tuple[tuple[Button, ...], ...]:
        """Yes / No to "may your question become a report?"."""
        return tuple((Button(self.say(lang, f"convert.{answer}"),
                             payload(OutsideButton.CONVERT, with_case(answer, case_number))),)
                     for answer in ("yes", "no"))

    def not_me_buttons(self, lang: str, case_number: str) -> tuple[tuple[Button, ...], ...]:
        """"That wasn't me", under the news that the report was opened in another chat."""
        button = Button(self.say(lang, "receipt.not_me"), payload(OutsideButton.NOT_ME, with_case("no", case_number)))
        return ((button,),)

    def is_draft_step(self, step_id: str | None) -> bool:
        """Whether a child standing there is writing a report (what a draft's expiry moves them away from)."""
        return self.flows.is_writing(step_id)
