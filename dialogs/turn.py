"""One event's worth of dialog: what the child did, where that leads, what to say and do."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dialogs.content import InputKind, Step, StepKind
from dialogs.model import (
    IMAGE_KINDS, Action, Button, Context, ConvertCase, DeleteIncoming, EventKind, FlagUrgent, Forget, Incoming,
    MediaKind, MediaRef, QuickExit, RateCase, Reconnect, RelayToCase, Say, State, SubmitCase,
)
from dialogs.payloads import CONVERT_STEP, RATING_STEP, RATINGS, parse_payload, payload

if TYPE_CHECKING:
    from dialogs.engine import Engine

MAX_HISTORY = 50
LINK = re.compile(r"^(?:(?:https?://)?(?:[\w-]+\.)+[a-z]{2,}(?:[/?#]\S*)?|@\w{3,})$", re.IGNORECASE)


class Turn:
    """One event's worth of work: mutates its own copy of the state and collects actions."""

    def __init__(self, engine: Engine, state: State, context: Context) -> None:
        self.engine, self.content, self.state, self.context = engine, engine.content, state, context
        self.actions: list[Action] = []

    def say(self, key: str, buttons: tuple[tuple[Button, ...], ...] = (), **slots: Any) -> None:
        self.actions.append(Say(self.engine.render.text(self.state.lang, key, **slots), buttons))

    @property
    def step(self) -> Step | None:
        return self.content.steps.get(self.state.step or "")

    # -- dispatch ---------------------------------------------------------------------------------

    def run(self, event: Incoming, fresh: bool) -> None:
        self._drop_removed_steps()
        if self.state.expired:
            self.state.expired = False
            self.say("common.draft_expired")
        text = event.text if event.kind in (EventKind.TEXT, EventKind.EDIT) else ""
        danger = bool(text) and self.engine.crisis.matches(text)
        if danger:
            self._flag_urgent()
        if fresh and event.kind is not EventKind.COMMAND and not danger:
            self.go(self.content.start)
            return
        handler = {
            EventKind.COMMAND: self._on_command, EventKind.BUTTON: self._on_button, EventKind.TEXT: self._on_text,
            EventKind.MEDIA: self._on_media, EventKind.UNSUPPORTED: self._on_unsupported, EventKind.EDIT: self._on_edit,
        }[event.kind]
        target = handler(event)
        if danger:
            # Danger is answered first and alone: any "use the buttons" hint would only get in the way.
            self.actions = [action for action in self.actions if not isinstance(action, Say)]
            resume = target or self.state.step or "menu"
            self.go("crisis", push=False)
            self.state.resume = resume
        elif target:
            self.go(target)

    def _drop_removed_steps(self) -> None:
        # A stored step the admins have since removed must not break the conversation (aiogram_dialog #246).
        steps = self.content.steps
        self.state.history = [step for step in self.state.history if step in steps]
        if self.state.resume not in steps:
            self.state.resume = None
        if self.state.step is not None and self.state.step not in steps:
            self.state.step = None
            self.say("common.step_gone")
            self.go("menu")

    def _on_command(self, event: Incoming) -> str | None:
        target = self.content.commands.get(event.text)
        if target is None:
            self.say("common.unknown_command", self._current_buttons())
            return None
        if event.text == "start" and self.state.has_draft and self.engine.is_draft_step(self.state.step):
            return "resume_choice"
        return target

    def _on_button(self, event: Incoming) -> str | None:
        parsed = parse_payload(event.text)
        if parsed and parsed[0] == RATING_STEP and parsed[1] in {str(score) for score in RATINGS}:
            self.actions.append(RateCase(int(parsed[1])))
            return "rated"
        if parsed and parsed[0] == CONVERT_STEP and self.context.open_case is not None:
            self.actions.append(ConvertCase(parsed[1] == "yes"))
            return "convert_answered"
        source = self.content.steps.get(parsed[0]) if parsed else None
        if source is None or not self._button_still_valid(source):
            return self._old_button()
        token = parsed[1]
        self.state.step = source.id
        if token == "back":
            return self._back()
        if token == "stop":
            return self._stop()
        if token == "skip" and source.optional:
            self.state.answers.pop(source.field or "", None)
            return source.next
        if token.startswith("lang:") and token[5:] in self.content.texts:
            self.state.lang = token[5:]
            return "menu"
        button = self._button_at(source, token)
        if button is None:
            return self._old_button()
        if button.value is not None and source.field:
            self.state.answers[source.field] = button.value
        if button.clear_urgent:
            self.state.urgent = False
        return self._special(button.goto)

    def _on_text(self, event: Incoming) -> str | None:
        step = self.step
        accepts = step is not None and step.input in (InputKind.TEXT, InputKind.ANY)
        if accepts and step.kind is StepKind.RECEIPT:
            self.actions.append(Reconnect(event.text.strip()))
            return None
        if accepts and step.kind is StepKind.RELAY:
            return self._relay(RelayToCase(text=event.text), step.next)
        if accepts and step.validate == "link" and not LINK.match(event.text.strip()):
            self.say(step.invalid or "common.use_buttons", self._current_buttons())  # nothing opened or fetched
            return None
        if accepts and step.field:
            self.state.answers[step.field] = event.text  # kept whole, however long
            return step.next
        if self._relaying():
            self.actions.append(RelayToCase(text=event.text))
            self.say("relay.sent")
            return None
        self.say("common.use_buttons", self._current_buttons())
        return None

    def _on_media(self, event: Incoming) -> str | None:
        media, step = event.media, self.step
        assert media is not None
        if media.kind in IMAGE_KINDS and self._images_forbidden():
            # DESIGN rule 5: no intimate image is kept or forwarded; tell the child why, kindly.
            self.actions.append(DeleteIncoming())
            self.say("images.not_here", self._current_buttons())
            return None
        if step is not None and step.input in (InputKind.MEDIA, InputKind.ANY) and step.kind is StepKind.RELAY:
            return self._relay(RelayToCase(text=event.text, media=media), step.next)
        if step is not None and step.input is InputKind.TEXT and media.kind in (MediaKind.VOICE, MediaKind.AUDIO):
            self.state.answers[step.field or "voice"] = {"voice": media.to_dict()}
            return step.next
        if step is not None and step.input in (InputKind.MEDIA, InputKind.ANY) and step.field:
            same_album = bool(media.group and self.state.media and self.state.media[-1].get("group") == media.group)
            self.state.media.append(media.to_dict())
            self.state.answers[step.field] = len(self.state.media)
            if not same_album:  # one acknowledgement per album, not one per picture
                self.say("screenshots.got", self._current_buttons())
            return None
        if self._relaying():
            self.actions.append(RelayToCase(text=event.text, media=media))
            if not media.group:
                self.say("relay.sent")
            return None
        self.say("common.media_not_here", self._current_buttons())
        return None

    def _on_unsupported(self, event: Incoming) -> str | None:
        self.say("common.unsupported", self._current_buttons())
        return None

    def _on_edit(self, event: Incoming) -> str | None:
        if self._relaying():
            self.actions.append(RelayToCase(text=event.text, edited=True))
            self.say("relay.sent")
        else:
            self.say("common.edited", self._current_buttons())
        return None

    # -- moving between steps ---------------------------------------------------------------------

    def go(self, target: str, push: bool = True) -> None:
        """Enter a step (following routes and 'then'), running its effects and saying its text."""
        previous = self.state.step
        for _ in range(20):  # routes and 'then' chains are short; the bound guards against a loop
            step = self.content.steps[target]
            if step.kind is StepKind.ROUTE:
                target = next(route.goto for route in step.routes if self._holds(route.when))
                continue
            self._remember_way_back(previous, step, push)
            self.state.step = step.id
            self._enter_effects(step)
            buttons = () if step.then else self._buttons(step)  # the next step's message carries them
            self.actions.append(self.engine.render.step(self.state, step, self.context, buttons))
            if not step.then:
                return
            previous, push, target = None, False, step.then
        raise RuntimeError("content loops through 'then' or routes")

    def _remember_way_back(self, previous: str | None, step: Step, push: bool) -> None:
        if step.id == "menu":
            self.state.history.clear()
        elif push and previous and previous != step.id and not self.content.steps[previous].then:
            self.state.history = (self.state.history + [previous])[-MAX_HISTORY:]
        if self.engine.is_draft_step(previous) and not self.engine.is_draft_step(step.id) and self.state.has_draft:
            self.state.resume = previous  # leaving a half-told report: /start offers to continue here

    def _enter_effects(self, step: Step) -> None:
        if step.reset:
            self.state.clear_draft()
        if step.urgent:
            self._flag_urgent()
        if step.kind is StepKind.SUBMIT:
            self._submit(step.case_kind)
        elif step.kind is StepKind.DISCARD:
            self.state.clear_draft()
        elif step.kind is StepKind.FORGET:
            self.actions.append(Forget())
            lang = self.state.lang
            self.state = State(lang=lang)
        elif step.kind is StepKind.QUICK_EXIT:
            self.actions.append(QuickExit())
            self.state.history.clear()

    def _submit(self, kind: str) -> None:
        answers = dict(self.state.answers)
        self.actions.append(SubmitCase(
            kind=kind, answers=answers,
            media=tuple(MediaRef.from_dict(item) for item in self.state.media),
            consent=str(answers.get("consent", "counsellor")), reply_wanted=answers.get("reply_wanted", "yes") == "yes",
            urgent=self.state.urgent, language=self.state.lang,
        ))
        self.state.clear_draft()
        self.state.urgent = False

    def _back(self) -> str:
        if not self.state.history:
            return self._stop()
        target = self.state.history.pop()
        self.state.step = None  # so going back does not push the step we leave
        return target

    def _stop(self) -> str:
        if self.state.has_draft and self.engine.is_draft_step(self.state.step):
            self.state.resume = self.state.step
            return "stopped"
        return "menu"

    def _special(self, target: str) -> str | None:
        if target == "@resume":
            resume, self.state.resume = self.state.resume, None
            return resume or "menu"
        if target == "@back":
            return self._back()
        return target

    def _old_button(self) -> None:
        # Inline buttons on old messages stay tappable: answer kindly and show where we are now.
        self.say("common.old_button", self._current_buttons())
        return None

    def _button_still_valid(self, source: Step) -> bool:
        # Buttons of the current step always work; an old one may not throw away a half-told report.
        if source.id == self.state.step:
            return True
        return not (self.state.has_draft and self.engine.is_draft_step(self.state.step))

    # -- helpers ----------------------------------------------------------------------------------

    def _relay(self, relay: RelayToCase, next_step: str | None) -> str | None:
        if self.context.open_case is None:
            self.say("case.none")
            return "menu"
        self.actions.append(relay)
        return next_step

    def _relaying(self) -> bool:
        return self.context.open_case is not None and not self.engine.is_draft_step(self.state.step)

    def _images_forbidden(self) -> bool:
        answers = self.state.answers
        category = answers.get("category") or answers.get("link_kind")
        if category is None and self.context.open_case is not None:
            category = self.context.open_case.category
        return category in self.content.image_free_categories

    def _flag_urgent(self) -> None:
        self.state.urgent = True
        self.actions.append(FlagUrgent())

    def _holds(self, when: dict[str, Any]) -> bool:
        for name, expected in when.items():
            if name == "open_case":
                actual: Any = self.context.open_case is not None
            elif name == "online":
                actual = self.context.online
            elif name == "draft":
                actual = self.state.has_draft
            else:
                actual = self.state.answers.get(name)
            if isinstance(expected, list) and actual not in expected or not isinstance(expected, list) and actual != expected:
                return False
        return True

    def _buttons(self, step: Step) -> tuple[tuple[Button, ...], ...]:
        rows: list[tuple[Button, ...]] = []
        if step.kind is StepKind.LANGUAGE:
            default = self.engine.default_language
            ordered = [default] + sorted(lang for lang in self.content.languages if lang != default)
            rows += [(Button(self.content.text(lang, "language.name"), payload(step.id, f"lang:{lang}")),)
                     for lang in ordered]
        index = 0
        for row in step.buttons:
            buttons = []
            for button in row:
                buttons.append(Button(self.engine.say(self.state.lang, button.label), payload(step.id, index)))
                index += 1
            rows.append(tuple(buttons))
        if step.optional:
            rows.append((Button(self.engine.say(self.state.lang, "common.skip"), payload(step.id, "skip")),))
        nav = []
        if step.back:
            nav.append(Button(self.engine.say(self.state.lang, "common.back"), payload(step.id, "back")))
        if step.stop:
            nav.append(Button(self.engine.say(self.state.lang, "common.stop"), payload(step.id, "stop")))
        if nav:
            rows.append(tuple(nav))
        return tuple(rows)

    def _current_buttons(self) -> tuple[tuple[Button, ...], ...]:
        step = self.step or self.content.steps["menu"]
        if self.state.step is None:
            self.state.step = "menu"
        return self._buttons(step)

    @staticmethod
    def _button_at(step: Step, token: str):
        flat = [button for row in step.buttons for button in row]
        return flat[int(token)] if token.isdigit() and int(token) < len(flat) else None
