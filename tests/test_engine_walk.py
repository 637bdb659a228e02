"""The dialog engine over the real content/, whatever paths admins gave it: every step is reached and
leads on, Back and Stop work everywhere, words of danger are heard everywhere, and whatever a child
throws at any step gets a kind answer and is never kept as the answer to a question they did not answer."""
from __future__ import annotations

from pathlib import Path

import pytest

from dialogs.actions import DeleteIncoming, FlagUrgent, RelayToCase, SubmitCase
from dialogs.content import InputKind, StepKind
from dialogs.engine import Engine
from dialogs.model import DANGER_NOTE, EventKind, Incoming, MediaKind, MediaRef, Say, State
from dialogs.payloads import payload
from dialogs.steps import BuiltinStep
from dialogs.turn import asks_for_an_account
from dialogs.validate import load_content
from tests.dialog_walk import Sample, explore, run

ROOT = Path(__file__).resolve().parent.parent
CONTENT = load_content(ROOT / "content")
ENGINE = Engine(CONTENT, "UA", "en", regions_with_chats=frozenset({"kyiv"}))  # "Where do you live?" asked
SAMPLES, EDGES = explore(ENGINE)
STANDING = sorted(SAMPLES)  # every step a child can stand at
TYPED = {"en": "hello, I don't get it", "uk": "привіт, мені погано", "lv": "sveiki, es nesaprotu",
         "sq": "përshëndetje, nuk e kuptoj"}


def at(step: str, lang: str = "en") -> Sample:
    sample = SAMPLES[step]
    state = sample.state.copy()
    state.lang = lang
    return Sample(state, sample.said, sample.context)


def says(actions: tuple) -> list[Say]:
    return [action for action in actions if isinstance(action, Say)]


def test_every_step_can_be_reached_by_a_child():
    passing = {s.id for s in CONTENT.steps.values() if s.kind is StepKind.ROUTE or s.then}
    assert set(CONTENT.steps) - passing - set(SAMPLES) == set()


# Quick exit leaves a blank screen on purpose: whatever the child sends next shows the menu again.
@pytest.mark.parametrize("step", [s for s in STANDING if CONTENT.steps[s].kind is not StepKind.QUICK_EXIT])
def test_every_step_leads_on_to_a_sent_report_or_the_menu(step):
    ends = {s.id for s in CONTENT.steps.values() if s.kind is StepKind.SUBMIT} | {BuiltinStep.MENU}
    seen, todo = set(), [step]
    while todo:
        current = todo.pop()
        if current in ends:
            return
        seen.add(current)
        todo += [after for after in EDGES.get(current, ()) if after not in seen]
    pytest.fail(f"from {step} no way leads to a sent report or the menu")


def test_every_message_on_every_path_is_complete():
    for sample in SAMPLES.values():
        assert all(say.text.strip() and "{" not in say.text for say in sample.said), sample.state.step


@pytest.mark.parametrize("step", STANDING)
def test_back_and_stop_work_at_every_step_and_lose_nothing(step):
    sample = at(step)
    buttons = {b.payload: b for say in sample.said[-1:] for row in say.buttons for b in row}
    if payload(step, "stop") in buttons:
        stopped = run(ENGINE, sample.state, Incoming(EventKind.BUTTON, payload(step, "stop")), sample.context)
        if sample.state.has_draft and ENGINE.is_draft_step(step):
            assert stopped.state.step == BuiltinStep.STOPPED and stopped.state.answers == sample.state.answers
            again = run(ENGINE, stopped.state, Incoming(EventKind.BUTTON, _button(stopped, "resume.continue")),
                        sample.context)
            assert again.state.step == step and again.state.answers == sample.state.answers
        else:
            assert stopped.state.step == BuiltinStep.MENU
    if payload(step, "back") in buttons:
        back = run(ENGINE, sample.state, Incoming(EventKind.BUTTON, payload(step, "back")), sample.context)
        assert back.state.step != step and says(back.actions)


@pytest.mark.parametrize("lang", sorted(CONTENT.texts))
@pytest.mark.parametrize("step", STANDING)
def test_danger_words_at_any_step_bring_helplines_and_are_never_kept_as_an_answer(step, lang):
    """Kept as the answer only where the question asks for the child's own account; elsewhere in a
    report beside the answers (DANGER_NOTE), and the question is asked again."""
    sample = at(step, lang)
    words = CONTENT.crisis_words[lang][0]
    outcome = run(ENGINE, sample.state, Incoming(EventKind.TEXT, words), sample.context)
    assert FlagUrgent in {type(a) for a in outcome.actions} and outcome.state.step == BuiltinStep.CRISIS
    assert "102" in says(outcome.actions)[-1].text  # Ukraine's police number, from content
    here = CONTENT.steps.get(step)
    account = here is not None and asks_for_an_account(here)
    kept = {**sample.state.answers, here.field: words} if account else dict(sample.state.answers)
    if not account and ENGINE.flows.is_writing(step) and sample.state.has_draft:
        kept[DANGER_NOTE] = [*sample.state.answers.get(DANGER_NOTE, []), words]
    assert outcome.state.answers == kept
    back = run(ENGINE, outcome.state, Incoming(EventKind.BUTTON, _button(outcome, "crisis.continue")), sample.context)
    assert back.state.step == step or step == BuiltinStep.CRISIS or account


def _bad_inputs(sample: Sample, lang: str) -> list[Incoming]:
    stale = [payload(step, 0) for step in ("category", "consent", "tips", "link_start") if step != sample.state.step]
    return [
        Incoming(EventKind.TEXT, TYPED[lang]),
        Incoming(EventKind.TEXT, "x" * 5000),
        Incoming(EventKind.MEDIA, media=MediaRef(MediaKind.PHOTO, "pic", 3)),
        Incoming(EventKind.MEDIA, media=MediaRef(MediaKind.VOICE, "voice", 4)),
        Incoming(EventKind.MEDIA, media=MediaRef(MediaKind.DOCUMENT, "doc", 5)),
        *(Incoming(EventKind.UNSUPPORTED, media=MediaRef(kind)) for kind in (MediaKind.STICKER, MediaKind.LOCATION)),
        Incoming(EventKind.EDIT, TYPED[lang]),
        Incoming(EventKind.COMMAND, "frobnicate"),
        *(Incoming(EventKind.BUTTON, data) for data in stale),
        Incoming(EventKind.BUTTON, payload(sample.state.step or "menu", 99)),
        Incoming(EventKind.BUTTON, payload(sample.state.step or "menu", "lang:xx")),
        Incoming(EventKind.BUTTON, payload("no_such_step", 0)),
        Incoming(EventKind.BUTTON, "garbage"),
    ]


def _may_keep(sample: Sample, event: Incoming) -> set[str]:
    """The answers this input may rightly give: the open question's own, when it takes such input."""
    step = CONTENT.steps.get(sample.state.step or "")
    if step is None or step.kind is not StepKind.QUESTION or not step.field:
        return set()
    media = event.media.kind if event.media else None
    if event.kind is EventKind.TEXT and step.input in (InputKind.TEXT, InputKind.ANY) and not step.validate:
        return {step.field}
    if media is MediaKind.VOICE and step.input is InputKind.TEXT and not step.validate:
        return {step.field}
    if event.kind is EventKind.MEDIA and step.input in (InputKind.MEDIA, InputKind.ANY):
        return {step.field}
    return set()


@pytest.mark.parametrize("lang", sorted(CONTENT.texts))
@pytest.mark.parametrize("step", STANDING)
def test_bad_input_at_any_step_gets_a_kind_answer_and_is_never_kept_as_another_answer(step, lang):
    sample = at(step, lang)
    writing = ENGINE.is_draft_step(step)
    for event in _bad_inputs(sample, lang):
        outcome = run(ENGINE, sample.state, event, sample.context)
        answered = says(outcome.actions)
        assert answered and all(say.text.strip() and "{" not in say.text for say in answered), (event, answered)
        assert not any(isinstance(a, SubmitCase) for a in outcome.actions), event
        if writing:
            assert not any(isinstance(a, RelayToCase) for a in outcome.actions), event
        if any(isinstance(a, DeleteIncoming) for a in outcome.actions):
            assert outcome.state.media == sample.state.media
        changed = {key for key in set(outcome.state.answers) | set(sample.state.answers)
                   if outcome.state.answers.get(key) != sample.state.answers.get(key)}
        assert changed <= _may_keep(sample, event), (event, changed)


def test_old_states_without_the_new_fields_still_load():
    state = State.from_dict({"lang": "en", "step": "what", "answers": {"category": "scam"}})
    outcome = ENGINE.handle(state, Incoming(EventKind.TEXT, "They took my account"))
    assert outcome.state.answers["what"] == "They took my account"


def _button(outcome, key: str) -> str:
    label = ENGINE.say(outcome.state.lang, key)
    return next(b.payload for say in says(outcome.actions) for row in say.buttons for b in row if b.label == label)
