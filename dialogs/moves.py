"""Moving between steps: entering one (routes, 'then', effects), Back, Stop, the ways back into a
half-told report, and the buttons a step shows."""
from __future__ import annotations

from typing import Any

from dialogs.actions import Action, FlagUrgent, Forget, QuickExit, SubmitCase, UrgentReason
from dialogs.content import ButtonSpec, Step, StepKind
from dialogs.flows import Flows
from dialogs.model import Button, Context, MediaRef, OpenCase, Say, State
from dialogs.payloads import Token, payload
from dialogs.regions import NoRegion
from dialogs.render import listed
from dialogs.steps import DETOURS, BuiltinStep, SpecialTarget

MAX_HISTORY = 50
_SPECIAL = frozenset(SpecialTarget)
Rows = tuple[tuple[Button, ...], ...]


class Moves:
    """One event's worth of work: mutates its own copy of the state and collects actions."""

    def __init__(self, flows: Flows, state: State, context: Context) -> None:
        self.flows, self.content, self.state, self.context = flows, flows.content, state, context
        self.actions: list[Action] = []
        # The child pressed a button inside the report they are writing (e.g. "Start over" on its
        # summary): a step that starts a new report may then drop the old answers without asking.
        self.may_reset = False
        self.going_back = False  # Back shows a question the child answered already, so they may change it

    def say(self, key: str, buttons: Rows = (), **slots: Any) -> None:
        self.actions.append(Say(self.flows.say(self.state.lang, key, **slots), buttons))

    @property
    def step(self) -> Step | None:
        return self.content.steps.get(self.state.step or "")

    @property
    def case(self) -> OpenCase | None:
        """The open case the child's messages go to."""
        return self.context.case(self.state.case)

    # -- where a button or command leads ----------------------------------------------------------

    def follow(self, target: str) -> None:
        """Go to a step, or where a special target leads."""
        if target == SpecialTarget.BACK:
            self.back()
        elif target == SpecialTarget.RESUME:
            if self.state.step == BuiltinStep.CRISIS:
                resume, self.state.return_to = self.state.return_to, None
            else:
                resume, self.state.resume = self.state.resume, None
            self.go(resume if resume in self.content.steps else BuiltinStep.MENU, push=False)
        elif target == SpecialTarget.START_OVER:
            heading = self.state.restart_at or BuiltinStep.REPORT_INTRO
            self.state.clear_draft()
            self.go(heading, push=False)
        else:
            self.go(target)

    def go(self, target: str, push: bool = True) -> None:
        """Enter a step (following routes and 'then'), running its effects and saying its text."""
        previous = self.state.step
        for _ in range(20):  # routes and 'then' chains are short; the bound guards against a loop
            if target in _SPECIAL:
                self.follow(target)
                return
            step = self.content.steps[target]
            if step.kind is StepKind.ROUTE:
                target = next(route.goto for route in step.routes if self._holds(route.when))
                continue
            if step.kind is StepKind.REGION and step.next and not self.going_back \
                    and (not self.flows.ask_region or self.state.region is not None):
                target = step.next  # no region has a chat of its own, or the child answered once already
                continue
            if step.reset and self.state.has_draft and not self.may_reset:
                # A new start never drops a half-told report silently: ask first, remember where to.
                self.state.restart_at = step.id
                step = self.content.steps[BuiltinStep.RESUME_CHOICE]
            self._remember_way_back(previous, step, push and step.id not in DETOURS)
            self.state.step = step.id
            if not self._enter_effects(step):
                return
            buttons = () if step.then else self.buttons(step)  # the next step's message carries them
            self.actions.append(self.flows.render.step(self.state, step, self.context, buttons))
            if not step.then:
                return
            previous, push, target = None, False, step.then
        raise RuntimeError("content loops through 'then' or routes")

    def back(self) -> None:
        if not self.state.history:
            self.stop()
            return
        target = self.state.history.pop()
        self.state.step = None  # so going back does not push the step we leave
        self.going_back = True
        self.go(target)
        self.going_back = False

    def stop(self) -> None:
        if self.state.has_draft and self.flows.is_writing(self.state.step):
            self.state.resume = self.state.step
            self.go(BuiltinStep.STOPPED)
        else:
            self.go(BuiltinStep.MENU)

    def _remember_way_back(self, previous: str | None, step: Step, push: bool) -> None:
        if step.id != BuiltinStep.CRISIS:
            self.state.return_to = None  # only the danger screen's buttons lead back there
        if step.id == BuiltinStep.MENU:
            self.state.history.clear()
        elif push and previous and previous != step.id and previous not in DETOURS \
                and not self.content.steps[previous].then:
            self.state.history = (self.state.history + [previous])[-MAX_HISTORY:]
        if self.flows.is_writing(previous) and not self.flows.is_writing(step.id) and self.state.has_draft:
            self.state.resume = previous  # leaving a half-told report: it continues here

    def _enter_effects(self, step: Step) -> bool:
        """Run what entering the step does; False when its message waits for the service's answer."""
        if step.reset:
            self.state.clear_draft()
        if step.urgent:
            self.flag_urgent(UrgentReason.SAID_NOT_SAFE)
        if step.kind is StepKind.SUBMIT:
            self._submit(step.case_kind)
            return False  # said once the case exists (CaseSubmitted), with its number
        if step.kind is StepKind.DISCARD:
            self.state.clear_draft()
        elif step.kind is StepKind.FORGET:
            self.actions.append(Forget())
            self.state = State(lang=self.state.lang, step=step.id)
        elif step.kind is StepKind.QUICK_EXIT:
            self.actions.append(QuickExit())
            self.state.history.clear()
        return True

    def _submit(self, kind: str) -> None:
        answers = dict(self.state.answers)
        self.actions.append(SubmitCase(
            kind=kind, answers=answers, media=tuple(MediaRef.from_dict(item) for item in self.state.media),
            consent=str(answers.get("consent", "counsellor")), reply_wanted=answers.get("reply_wanted") == "yes",
            urgent=self.state.urgent, language=self.state.lang,
            region=self.state.region if self.state.region in {region.key for region in self.flows.regions} else None,
        ))

    def flag_urgent(self, reason: UrgentReason) -> None:
        self.state.urgent = True
        self.actions.append(FlagUrgent(reason))

    def _holds(self, when: dict[str, Any]) -> bool:
        case = self.case
        for name, expected in when.items():
            if name == "open_case":
                actual: Any = case is not None
            elif name == "case_category":
                actual = case.category if case else None
            elif name == "online":
                actual = dict(self.context.online_in).get(self.state.region or "", self.context.online)
            elif name == "draft":
                actual = self.state.has_draft
            else:
                actual = self.state.answers.get(name)
            if isinstance(expected, list) and actual not in expected or not isinstance(expected, list) and actual != expected:
                return False
        return True

    # -- buttons ----------------------------------------------------------------------------------

    def buttons(self, step: Step) -> Rows:
        lang, rows = self.state.lang, []
        if step.kind is StepKind.LANGUAGE:
            default = self.flows.default_language
            ordered = [default] + sorted(code for code in self.content.languages if code != default)
            rows += [(Button(self.content.text(code, "language.name"), payload(step.id, Token.LANGUAGE + code)),)
                     for code in ordered]
        if step.kind is StepKind.CASE_STATUS:
            rows += [(Button(self.flows.say(lang, "mycase.pick", case_number=case.number),
                             payload(step.id, Token.CASE + case.number)),) for case in listed(self.context)]
        if step.kind is StepKind.REGION:
            rows += [(Button(region.name(lang), payload(step.id, Token.REGION + region.key)),)
                     for region in self.flows.regions]
            rows += [(Button(self.flows.say(lang, f"region.{choice}"), payload(step.id, Token.REGION + choice)),)
                     for choice in NoRegion]
        index = 0
        for row in step.buttons:
            rows.append(tuple(Button(self.flows.say(lang, button.label), payload(step.id, index + n))
                              for n, button in enumerate(row)))
            index += len(row)
        if step.optional:
            rows.append((Button(self.flows.say(lang, "common.skip"), payload(step.id, Token.SKIP)),))
        nav = [Button(self.flows.say(lang, f"common.{token}"), payload(step.id, token))
               for token, shown in ((Token.BACK, step.back), (Token.STOP, step.stop)) if shown]
        if nav:
            rows.append(tuple(nav))
        return tuple(rows)

    def buttons_here(self) -> Rows:
        """The buttons of where the child stands, for a hint; a screen without any (quick exit) shows the menu's."""
        step = self.step
        rows = self.buttons(step) if step is not None else ()
        if not rows:
            self.state.step = BuiltinStep.MENU
            self.state.history.clear()
            rows = self.buttons(self.content.steps[BuiltinStep.MENU])
        return rows

    @staticmethod
    def button_at(step: Step, token: str) -> ButtonSpec | None:
        flat = [button for row in step.buttons for button in row]
        return flat[int(token)] if token.isdigit() and int(token) < len(flat) else None
