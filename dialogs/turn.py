"""One event's worth of dialog: what the child did (or what the service reports), and where it leads."""
from __future__ import annotations

from dialogs.actions import (
    CaseSubmitted, ConvertCase, DeleteIncoming, Disown, RateCase, ReceiptChecked, ReceiptOutcome, Reconnect, RelayToCase,
    ServiceEvent, SubmitRefused, UrgentReason, UrgentWithdrawn,
)
from dialogs.content import InputKind, Step, StepKind
from dialogs.links import looks_like_link
from dialogs.model import DANGER_NOTE, IMAGE_KINDS, MAX_SCREENSHOTS, SPOKEN_KINDS, EventKind, Incoming, MediaRef
from dialogs.moves import Moves
from dialogs.payloads import RATINGS, OutsideButton, Token, parse_payload, split_case
from dialogs.regions import NoRegion
from dialogs.steps import DETOURS, BuiltinStep


class Turn(Moves):
    def run(self, event: Incoming | ServiceEvent, fresh: bool) -> None:
        self._drop_removed_steps()
        if self.state.expired:
            self.state.expired = False
            self.say("common.draft_expired")
        if not isinstance(event, Incoming):
            self._on_result(event)
            return
        text = event.text if event.kind in (EventKind.TEXT, EventKind.EDIT) else ""
        if text and self.flows.crisis.matches(text):
            self._on_danger(event)
        elif fresh and event.kind is not EventKind.COMMAND:
            self.go(self.content.start)
        else:
            {
                EventKind.COMMAND: self._on_command, EventKind.BUTTON: self._on_button, EventKind.TEXT: self._on_text,
                EventKind.MEDIA: self._on_media, EventKind.UNSUPPORTED: self._on_unsupported,
                EventKind.EDIT: self._on_edit,
            }[event.kind](event)

    def _drop_removed_steps(self) -> None:
        # A stored step the admins have since removed must not break the conversation (aiogram_dialog #246).
        steps, state = self.content.steps, self.state
        state.history = [step for step in state.history if step in steps]
        state.resume = state.resume if state.resume in steps else None
        state.return_to = state.return_to if state.return_to in steps else None
        state.restart_at = state.restart_at if state.restart_at in steps else None
        if state.step is not None and state.step not in steps:
            state.step = None
            self.say("common.step_gone")
            self.go(BuiltinStep.MENU)

    # -- what the child did -----------------------------------------------------------------------

    def _on_danger(self, event: Incoming) -> None:
        # Danger is answered first and alone, and nothing the child typed is lost. On a question that
        # asks for their own account the words are part of it: kept as the answer, and after the danger
        # screen the report goes on. Anywhere else in a report they answer no question: kept beside
        # the answers, for the counsellor (DANGER_NOTE). Outside a report they go where anything typed would.
        self.flag_urgent(UrgentReason.DANGER_WORDS)
        case, step = self.case, self.step
        return_to = self.state.step
        if case is not None and self._relaying():
            self.actions.append(RelayToCase(case.number, text=event.text, edited=event.kind is EventKind.EDIT))
        elif step is not None and event.kind is EventKind.TEXT and asks_for_an_account(step):
            self.state.answers[step.field or ""] = event.text
            return_to = step.next
        elif self.flows.is_writing(self.state.step) and self.state.has_draft:
            self.state.answers[DANGER_NOTE] = [*self.state.answers.get(DANGER_NOTE, []), event.text]
        if self.state.step != BuiltinStep.CRISIS:
            self.state.return_to = return_to
        self.go(BuiltinStep.CRISIS)

    def _on_command(self, event: Incoming) -> None:
        target = self.content.commands.get(event.text)
        if target is None:
            self.say("common.unknown_command", self.buttons_here())
        elif target == self.content.start and self.state.has_draft:
            self.go(BuiltinStep.RESUME_CHOICE)
        else:
            self.go(target)

    def _on_button(self, event: Incoming) -> None:
        parsed = parse_payload(event.text)
        if parsed is None:
            self._old_button()
        elif parsed[0] in (OutsideButton.RATE, OutsideButton.CONVERT, OutsideButton.NOT_ME):
            self._on_outside_button(*parsed)
        else:
            source = self.content.steps.get(parsed[0])
            if source is None or not self._still_valid(source):
                self._old_button()
            else:
                self._press(source, parsed[1])

    def _press(self, source: Step, token: str) -> None:
        self.state.step = source.id
        self.may_reset = bool(source.field) or source.kind is StepKind.SUMMARY  # e.g. "Start over" on a summary
        if token == Token.BACK and source.back:
            self.back()
        elif token == Token.STOP and source.stop:
            self.stop()
        elif token == Token.SKIP and source.optional and source.next:
            self.state.answers.pop(source.field or "", None)
            self.go(source.next)
        elif token.startswith(Token.LANGUAGE) and source.kind is StepKind.LANGUAGE \
                and token.removeprefix(Token.LANGUAGE) in self.content.texts:
            self.state.lang = token.removeprefix(Token.LANGUAGE)
            self.back()  # where the child was, now in their language (a report carries on)
        elif token.startswith(Token.CASE) and source.kind is StepKind.CASE_STATUS and source.next \
                and self._open(token.removeprefix(Token.CASE)):
            self.state.case = token.removeprefix(Token.CASE)
            self.go(source.next)
        elif token.startswith(Token.REGION) and source.kind is StepKind.REGION and source.next:
            self._region(source, token.removeprefix(Token.REGION))
        elif (button := self.button_at(source, token)) is None:
            self._old_button()
        else:
            if button.value is not None and source.field:
                self.state.answers[source.field] = button.value
            if button.clear_urgent and self.state.urgent:
                self.state.urgent = False
                self.actions.append(UrgentWithdrawn())
            if button.say:
                self.say(button.say)
            self.follow(button.goto)

    def _region(self, source: Step, answer: str) -> None:
        if answer in {region.key for region in self.flows.regions} or answer in set(NoRegion):
            self.state.region = answer  # never asked again in this conversation
            self.go(source.next or BuiltinStep.MENU)
        else:  # a region no longer served: nothing changes, the question stays
            self.say("region.unknown", self.buttons_here())

    def _on_outside_button(self, namespace: str, token: str) -> None:
        value, number = split_case(token)
        if namespace == OutsideButton.RATE and value.isdigit() and int(value) in RATINGS:
            self.actions.append(RateCase(int(value), number))
            self.go(BuiltinStep.RATED)
        elif namespace == OutsideButton.CONVERT and value in ("yes", "no") \
                and (self._open(number) if number else self.case is not None):
            self.actions.append(ConvertCase(value == "yes", number))
            self.go(BuiltinStep.CONVERT_ANSWERED)
        elif namespace == OutsideButton.NOT_ME and value == "no" and number and self._open(number):
            self.actions.append(Disown(number))
            self.say("receipt.not_me_done", case_number=number)
            self.go(BuiltinStep.MENU)
        else:
            self._old_button()

    def _on_text(self, event: Incoming) -> None:
        step, text = self.step, event.text
        takes_text = step is not None and step.input in (InputKind.TEXT, InputKind.ANY)
        if takes_text and step.kind is StepKind.RECEIPT:
            self.actions.append(Reconnect(text.strip()))
        elif takes_text and step.kind is StepKind.RELAY:
            self._relay_here(step, text=text)
        elif takes_text and step.kind is StepKind.QUESTION and step.field:
            if step.validate == "link" and not looks_like_link(text):
                self.say(step.invalid or "common.use_buttons", self.buttons_here())  # nothing opened or fetched
                return
            self.state.answers[step.field] = text  # kept whole, however long
            self.go(step.next or BuiltinStep.MENU)
        elif self._relaying():
            self._relay_aside(text=text)
        else:
            self.say("common.use_buttons", self.buttons_here())

    def _on_media(self, event: Incoming) -> None:
        media, step = event.media, self.step
        assert media is not None
        if media.kind in IMAGE_KINDS and self._images_forbidden():
            # No intimate image is ever kept or forwarded: delete it, and tell the child why, kindly.
            self.actions.append(DeleteIncoming())
            self.say("images.not_here", self.buttons_here())
        elif step is not None and step.kind is StepKind.RELAY and step.input in (InputKind.MEDIA, InputKind.ANY):
            self._relay_here(step, text=event.text, media=media)  # a caption goes with its file
        elif step is not None and step.kind is StepKind.QUESTION and step.field and step.input is InputKind.TEXT \
                and media.kind in SPOKEN_KINDS and not step.validate:
            self.state.answers[step.field] = {"voice": media.to_dict()}
            self.go(step.next or BuiltinStep.MENU)
        elif step is not None and step.kind is StepKind.QUESTION and step.field \
                and step.input in (InputKind.MEDIA, InputKind.ANY) and len(self.state.media) >= MAX_SCREENSHOTS:
            full = f"{media.group}|full" if media.group else None  # one kind word per album; none of it kept
            if full is None or self.state.last_album != full:
                self.say("screenshots.too_many", self.buttons_here(), count=MAX_SCREENSHOTS)
            self.state.last_album = full
        elif step is not None and step.kind is StepKind.QUESTION and step.field \
                and step.input in (InputKind.MEDIA, InputKind.ANY):
            self.state.media.append(media.to_dict())
            self.state.answers[step.field] = len(self.state.media)
            if self._first_of_album(media):
                self.say("screenshots.got", self.buttons_here())
        elif self._relaying():
            self._relay_aside(text=event.text, media=media)
        else:
            self.say(step.invalid if step and step.invalid else "common.media_not_here", self.buttons_here())

    def _on_unsupported(self, event: Incoming) -> None:
        self.say("common.unsupported", self.buttons_here())

    def _on_edit(self, event: Incoming) -> None:
        if self._relaying():
            self._relay_aside(text=event.text, edited=True)
        else:
            self.say("common.edited", self.buttons_here())

    # -- what the service reports -----------------------------------------------------------------

    def _on_result(self, event: ServiceEvent) -> None:
        step = self.step
        if isinstance(event, CaseSubmitted) and step is not None and step.kind is StepKind.SUBMIT:
            self.state.case = event.case_number
            buttons = () if step.then else self.buttons(step)
            self.actions.append(self.flows.render.step(
                self.state, step, self.context, buttons, case_number=event.case_number,
                receipt_code=event.receipt_code))
            self.state.clear_draft()
            self.state.urgent = False
            if step.then:
                self.go(step.then, push=False)
        elif isinstance(event, SubmitRefused):
            self.say("common.daily_cap")  # the answers stay; the report continues at its last question
            self.go(BuiltinStep.MENU)
        elif isinstance(event, ReceiptChecked):
            self._on_receipt(event)

    def _on_receipt(self, event: ReceiptChecked) -> None:
        if event.outcome in (ReceiptOutcome.TOO_MANY, ReceiptOutcome.PAUSED):
            self.say("receipt.too_many" if event.outcome is ReceiptOutcome.TOO_MANY else "receipt.paused")
            self.go(BuiltinStep.MENU)
        elif event.outcome in (ReceiptOutcome.NOT_FOUND, ReceiptOutcome.CHECK_CODE) or event.case_number is None:
            self.say("receipt.check_code" if event.outcome is ReceiptOutcome.CHECK_CODE else "receipt.bad")
            self.go(self.state.step or BuiltinStep.MENU, push=False)  # ask again
        else:
            self.state.case = event.case_number
            found = "receipt.ok" if event.outcome is ReceiptOutcome.FOUND else "receipt.already_here"
            self.say(found, case_number=event.case_number)
            self.go(BuiltinStep.MENU)

    # -- helpers ----------------------------------------------------------------------------------

    def _relaying(self) -> bool:
        """Whether words typed here go to the counsellor: only outside a report being written (nor
        on a screen that leads back into one) — the child then hears which report they went to."""
        if self.case is None or self.flows.is_writing(self.state.step):
            return False
        return not (self.state.step in DETOURS and self.state.has_draft)

    def _relay_here(self, step: Step, text: str = "", media: MediaRef | None = None) -> None:
        """On a relay step ("Write what you want to add to report N"): pass it on, then go on."""
        case = self.case
        if case is None:
            self.say("case.none")
            self.go(BuiltinStep.MENU)
            return
        self.actions.append(RelayToCase(case.number, text=text, media=media))
        if media is None or self._first_of_album(media):
            self.go(step.next or BuiltinStep.MENU)

    def _relay_aside(self, text: str = "", media: MediaRef | None = None, edited: bool = False) -> None:
        case = self.case
        assert case is not None
        self.actions.append(RelayToCase(case.number, text=text, media=media, edited=edited))
        if media is None or self._first_of_album(media):
            self.say("relay.sent", case_number=case.number)

    def _first_of_album(self, media: MediaRef) -> bool:
        """One acknowledgement per album, not one per picture."""
        first = media.group is None or media.group != self.state.last_album
        self.state.last_album = media.group
        return first

    def _open(self, number: str) -> bool:
        return any(case.number == number for case in self.context.open_cases)

    def _still_valid(self, source: Step) -> bool:
        # Buttons of the current step always work. An old one never answers a question that is not
        # being asked, and may not throw away a half-told report by leading elsewhere.
        if source.id == self.state.step:
            return True
        if self.flows.is_writing(source.id):
            return False
        return not (self.state.has_draft and self.flows.is_writing(self.state.step))

    def _old_button(self) -> None:
        # Inline buttons on old messages stay tappable: answer kindly and show where we are now.
        self.say("common.old_button", self.buttons_here())

    def _images_forbidden(self) -> bool:
        answers, case = self.state.answers, self.case
        category = answers.get("category") or answers.get("link_kind")
        if category is None and case is not None:
            category = case.category
        return category in self.content.image_free_categories


def asks_for_an_account(step: Step) -> bool:
    """A question whose only answer is the child's own words (no choices, nothing to validate)."""
    return (step.kind is StepKind.QUESTION and bool(step.field) and step.input in (InputKind.TEXT, InputKind.ANY)
            and not step.buttons and step.validate is None and bool(step.next))
