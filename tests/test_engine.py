"""The dialog engine over the real content: every path, Back and Stop everywhere, danger words at every step."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dialogs.engine import Engine
from dialogs.payloads import payload
from dialogs.model import (
    Context, DeleteIncoming, EventKind, FlagUrgent, Incoming, MediaKind, MediaRef, OpenCase, RelayToCase, Say,
    State, SubmitCase,
)
from dialogs.validate import load_content

ROOT = Path(__file__).resolve().parent.parent
CONTENT = load_content(ROOT / "content")
CATEGORIES = ["bullying", "sextortion", "grooming", "intimate_images", "recruitment", "hate", "scam", "other"]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(CONTENT, "UA", "en")


class Walk:
    """Drives the engine like a child, by button labels' keys, keeping the latest state."""

    def __init__(self, engine: Engine, context: Context = Context()) -> None:
        self.engine, self.context = engine, context
        self.state: State | None = None
        self.actions: tuple = ()

    def do(self, kind: EventKind, text: str = "", media: MediaRef | None = None) -> tuple:
        outcome = self.engine.handle(self.state, Incoming(kind, text, media, "en"), self.context)
        self.state, self.actions = outcome.state, outcome.actions
        return self.actions

    def command(self, name: str) -> tuple:
        return self.do(EventKind.COMMAND, name)

    def text(self, text: str) -> tuple:
        return self.do(EventKind.TEXT, text)

    def press(self, label_key: str) -> tuple:
        label = self.engine.say(self.state.lang, label_key)
        for say in reversed(self.says):
            for row in say.buttons:
                for button in row:
                    if button.label == label:
                        return self.do(EventKind.BUTTON, button.payload)
        raise AssertionError(f"no button {label!r} in {[s.text[:40] for s in self.says]}")

    @property
    def says(self) -> list[Say]:
        return [action for action in self.actions if isinstance(action, Say)]

    @property
    def step(self) -> str | None:
        return self.state.step


def to_step(engine: Engine, category: str, target: str) -> Walk:
    """Walk a report in `category` until the engine stands at `target`."""
    walk = Walk(engine)
    walk.command("start")
    walk.press("menu.report")
    plan = [("press", f"category.{category}"), ("text", "Something bad happened in a chat."),
            ("press", "platform.tiktok"), ("press", "when.today"), ("press", "answer.no"), ("press", "who.stranger"),
            ("press", "who.adult"), ("press", "age.young")]
    plan.append(("press", "common.continue") if category in CONTENT.image_free_categories else ("press", "screenshots.done"))
    plan += [("press", "summary.correct"), ("press", "consent.police"), ("press", "reply.no")]
    for kind, value in plan:
        if walk.step == target:
            return walk
        walk.press(value) if kind == "press" else walk.text(value)
    assert walk.step == target, f"never reached {target}"
    return walk


def test_dialogs_do_not_import_any_platform():
    for path in (ROOT / "dialogs").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] in ("aiogram", "viberbot", "aiohttp", "sqlalchemy") for n in names), path


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_reaches_a_submitted_case(engine, category):
    walk = to_step(engine, category, "summary")
    summary = walk.says[-1].text
    assert "Something bad happened in a chat." in summary
    walk.press("summary.correct")
    walk.press("consent.counsellor")
    walk.press("reply.yes")
    submitted = [a for a in walk.actions if isinstance(a, SubmitCase)]
    assert len(submitted) == 1
    case = submitted[0]
    assert case.answers["category"] == category and case.consent == "counsellor" and case.reply_wanted
    assert "{case_number}" in walk.says[-1].text  # filled in by the service once the case exists
    assert not walk.state.has_draft


def test_not_sending_deletes_the_draft_and_submits_nothing(engine):
    walk = to_step(engine, "scam", "consent")
    walk.press("consent.none")
    assert not any(isinstance(a, SubmitCase) for a in walk.actions)
    assert not walk.state.has_draft and walk.step == "not_sent"


DRAFT_STEPS = ["category", "what", "where", "when", "ongoing", "who_known", "who_age", "age_group", "screenshots",
               "summary", "consent", "reply"]


@pytest.mark.parametrize("step", DRAFT_STEPS)
def test_every_step_has_back_and_stop(engine, step):
    walk = to_step(engine, "bullying", step)
    labels = [b.label for row in walk.says[-1].buttons for b in row]
    assert engine.say("en", "common.back") in labels and engine.say("en", "common.stop") in labels
    walk.press("common.stop")
    if walk.state.has_draft:
        assert walk.step == "stopped"
        walk.press("resume.continue")
        assert walk.step == step  # nothing lost: the child is back where they stopped
    else:
        assert walk.step == "menu"


@pytest.mark.parametrize("step", DRAFT_STEPS[1:])
def test_back_goes_to_the_previous_question(engine, step):
    walk = to_step(engine, "hate", step)
    walk.press("common.back")
    assert walk.step != step and walk.step in DRAFT_STEPS


@pytest.mark.parametrize("lang", sorted(CONTENT.texts))
@pytest.mark.parametrize("step", DRAFT_STEPS)
def test_danger_words_at_any_step_bring_helplines_and_urgency(engine, lang, step):
    walk = to_step(engine, "bullying", step)
    walk.text(CONTENT.crisis_words[lang][0])
    assert any(isinstance(a, FlagUrgent) for a in walk.actions)
    assert walk.step == "crisis" and "102" in walk.says[-1].text  # Ukraine's police number, from content
    walk.press("crisis.continue")
    assert walk.step in DRAFT_STEPS and walk.state.urgent


def test_the_child_can_say_the_bot_misunderstood(engine):
    walk = to_step(engine, "bullying", "what")
    walk.text(CONTENT.crisis_words["en"][0])
    walk.press("crisis.misunderstood")
    assert not walk.state.urgent and walk.step == "where"


def test_help_now_marks_urgent_and_shows_numbers(engine):
    walk = Walk(engine)
    walk.command("help")
    assert walk.state.urgent and "116 111" in walk.says[-1].text


def test_start_mid_report_offers_to_continue(engine):
    walk = to_step(engine, "scam", "ongoing")
    walk.command("start")
    assert walk.step == "resume_choice"
    walk.press("resume.continue")
    assert walk.step == "ongoing"


def test_an_old_button_does_not_throw_away_a_half_told_report(engine):
    walk = to_step(engine, "bullying", "where")
    old_category_button = payload("category", 0)
    walk.do(EventKind.BUTTON, old_category_button)
    assert walk.step == "where" and walk.says[0].text == engine.say("en", "common.old_button")


def test_a_removed_step_falls_back_to_the_menu_kindly(engine):
    state = State(lang="en", step="a_step_admins_removed", history=["gone"])
    outcome = engine.handle(state, Incoming(EventKind.TEXT, "hello"))
    assert outcome.state.step == "menu"
    assert outcome.actions[0].text == engine.say("en", "common.step_gone")


@pytest.mark.parametrize("category", sorted(CONTENT.image_free_categories & set(CATEGORIES)))
def test_intimate_image_categories_never_keep_a_picture(engine, category):
    walk = to_step(engine, category, "when")
    walk.do(EventKind.MEDIA, media=MediaRef(MediaKind.PHOTO, "file-1", 55))
    assert any(isinstance(a, DeleteIncoming) for a in walk.actions)
    assert walk.state.media == [] and "file-1" not in str(walk.state.to_dict())


def test_screenshots_are_kept_and_an_album_is_acknowledged_once(engine):
    walk = to_step(engine, "bullying", "screenshots")
    first = walk.do(EventKind.MEDIA, media=MediaRef(MediaKind.PHOTO, "f1", 1, "album"))
    second = walk.do(EventKind.MEDIA, media=MediaRef(MediaKind.PHOTO, "f2", 2, "album"))
    assert len([a for a in first if isinstance(a, Say)]) == 1 and not second
    assert len(walk.state.media) == 2


@pytest.mark.parametrize("kind", [MediaKind.STICKER, MediaKind.LOCATION, MediaKind.CONTACT, MediaKind.POLL])
def test_unsupported_input_gets_a_kind_answer_and_keeps_the_step(engine, kind):
    walk = to_step(engine, "bullying", "when")
    walk.do(EventKind.UNSUPPORTED, media=MediaRef(kind))
    assert walk.step == "when" and walk.says[0].text == engine.say("en", "common.unsupported")


def test_voice_note_is_accepted_as_the_story(engine):
    walk = to_step(engine, "bullying", "what")
    walk.do(EventKind.MEDIA, media=MediaRef(MediaKind.VOICE, "voice-1", 9))
    assert walk.state.answers["what"] == {"voice": {"kind": "voice", "file_ref": "voice-1", "message_id": 9}}


def test_with_an_open_case_free_text_goes_to_the_counsellor(engine):
    walk = Walk(engine, Context(OpenCase("123456", "assigned", True, "bullying")))
    walk.command("menu")
    walk.text("They did it again today")
    assert RelayToCase(text="They did it again today") in walk.actions


def test_a_new_report_with_an_open_case_asks_first(engine):
    walk = Walk(engine, Context(OpenCase("123456", "new", True, "hate")))
    walk.command("report")
    assert walk.step == "open_case_choice"


def test_unknown_command_is_answered_kindly(engine):
    walk = Walk(engine)
    walk.command("start")
    walk.command("frobnicate")
    assert walk.says[0].text == engine.say("en", "common.unknown_command") and walk.says[0].buttons


def test_language_is_taken_from_the_platform_and_can_be_changed(engine):
    outcome = engine.handle(None, Incoming(EventKind.COMMAND, "start", language_hint="uk-UA"))
    assert outcome.state.lang == "uk"
    walk = Walk(engine)
    walk.command("language")
    lv = [b for row in walk.says[-1].buttons for b in row if b.payload.endswith("lang:lv")]
    walk.do(EventKind.BUTTON, lv[0].payload)
    assert walk.state.lang == "lv" and walk.step == "menu"


def test_every_payload_fits_telegram_callback_data(engine):
    for step in CONTENT.steps:
        for token in ("back", "stop", "skip", "lang:sq", 99):
            assert len(payload(step, token).encode()) <= 64


def test_a_link_report_about_abuse_material_never_keeps_a_picture(engine):
    walk = Walk(engine)
    walk.command("link")
    walk.press("link_kind.csam")
    walk.do(EventKind.MEDIA, media=MediaRef(MediaKind.PHOTO, "file-2", 56))
    assert any(isinstance(a, DeleteIncoming) for a in walk.actions) and walk.state.media == []


def test_a_link_must_look_like_a_link_and_is_kept_as_typed(engine):
    walk = Walk(engine)
    walk.command("link")
    walk.press("link_kind.scam")
    walk.text("no idea")
    assert walk.step == "link_url" and walk.says[0].text == engine.say("en", "link.invalid")
    walk.text("tiktok.com/@seller")
    assert walk.state.answers["link"] == "tiktok.com/@seller" and walk.step == "link_where"
