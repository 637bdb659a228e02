"""The dialog engine on the tests' own fixed content (tests/content): each promise the bot makes to a child."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dialogs.actions import (
    ConvertCase, DeleteIncoming, FlagUrgent, RelayToCase, SubmitCase, SubmitRefused, UrgentReason, UrgentWithdrawn,
)
from dialogs.engine import Engine
from dialogs.model import DANGER_NOTE, Context, EventKind, Incoming, MediaKind, MediaRef, OpenCase, Say, State
from dialogs.payloads import payload
from dialogs.validate import load_content
from tests.dialog_walk import CASE, Walk
from tests.support import TEST_CONTENT

ROOT = Path(__file__).resolve().parent.parent
CONTENT = load_content(TEST_CONTENT)
CATEGORIES = ["bullying", "sextortion", "grooming", "intimate_images", "recruitment", "hate", "scam", "other"]
DANGER = "I want to kill myself"
WITH_CASE = Context((CASE,))


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(CONTENT, "UA", "en")


def to_step(engine: Engine, category: str, target: str, context: Context = Context()) -> Walk:
    """Walk a report in `category` until the engine stands at `target`."""
    walk = Walk(engine, context)
    walk.command("start")
    walk.press("menu.report")
    if walk.step == "open_case_choice":
        walk.press("report.new_case")
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


def test_dialogs_do_not_import_any_platform_nor_each_other_in_a_circle():
    imports: dict[str, set[str]] = {}
    for path in (ROOT / "dialogs").glob("*.py"):
        names = [node.module or "" for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)]
        names += [a.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Import) for a in node.names]
        assert not any(n.split(".")[0] in ("aiogram", "viberbot", "aiohttp", "sqlalchemy", "bot") for n in names), path
        imports[path.stem] = {n.split(".")[1] for n in names if n.startswith("dialogs.")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in imports.get(start, ()))

    assert not [module for module in imports if reaches(module, module, set())]


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_reaches_a_submitted_case_told_with_its_number(engine, category):
    walk = to_step(engine, category, "summary")
    assert "Something bad happened in a chat." in walk.says[-1].text
    walk.press("summary.correct")
    walk.press("consent.counsellor")
    walk.press("reply.yes")
    [case] = walk.of(SubmitCase)
    assert case.answers["category"] == category and case.consent == "counsellor" and case.reply_wanted
    sent = walk.says[-1].text
    assert "222222" in sent and "sun-moon-star" in sent and "{" not in sent  # said complete, by the engine
    assert not walk.state.has_draft and walk.state.case == "222222"


@pytest.mark.parametrize("category", ["bullying", "sextortion", "scam"])
def test_tips_for_my_situation_after_a_report_are_the_tips_for_its_kind(engine, category):
    walk = to_step(engine, category, "reply")
    walk.press("reply.yes")
    walk.context = Context((OpenCase("222222", "new", True, category),))  # the service now has the case
    walk.press("report.tips_for_me")
    assert walk.says[-1].text == engine.say("en", f"tips.{category}.card1")


def test_over_the_daily_cap_nothing_is_lost_and_the_report_can_be_continued(engine):
    walk = to_step(engine, "scam", "reply")
    outcome = engine.handle(walk.state, Incoming(EventKind.BUTTON, payload("reply", 0)))
    refused = engine.handle(outcome.state, SubmitRefused())
    assert refused.actions[0].text == engine.say("en", "common.daily_cap") and refused.state.step == "menu"
    walk.state, walk.actions = refused.state, refused.actions
    walk.press("menu.report")
    walk.press("resume.continue")
    assert walk.step == "reply" and walk.state.answers["category"] == "scam"


def test_not_sending_deletes_the_draft_and_submits_nothing(engine):
    walk = to_step(engine, "scam", "consent")
    walk.press("consent.none")
    assert not walk.of(SubmitCase) and not walk.state.has_draft and walk.step == "not_sent"


@pytest.mark.parametrize("way_back", ["/start", "menu then report", "/report", "/link", "ask"])
def test_a_stopped_report_can_be_continued_however_the_child_comes_back(engine, way_back):
    walk = to_step(engine, "hate", "who_known")
    walk.press("common.stop")
    assert walk.step == "stopped"
    if way_back == "menu then report":
        walk.press("common.to_menu")
        walk.press("menu.report")
    elif way_back == "ask":
        walk.press("menu.ask")
    else:
        walk.command(way_back[1:])
    assert walk.step == "resume_choice"
    walk.press("resume.continue")
    assert walk.step == "who_known" and walk.state.answers["category"] == "hate"


def test_starting_something_new_deletes_the_old_answers_only_when_the_child_says_so(engine):
    walk = to_step(engine, "hate", "when")
    walk.press("common.stop")
    walk.press("menu.ask")
    walk.press("resume.start_over")
    assert walk.step == "ask_question" and not walk.state.has_draft  # where the child was heading


def test_switching_language_mid_report_carries_on_in_the_new_language(engine):
    walk = to_step(engine, "scam", "ongoing")
    walk.command("language")
    uk = [b for row in walk.says[-1].buttons for b in row if b.payload.endswith("lang:uk")]
    walk.do(EventKind.BUTTON, uk[0].payload)
    assert walk.step == "ongoing" and walk.says[-1].text == engine.say("uk", "report.ongoing")
    walk.command("menu")
    walk.command("start")
    assert walk.step == "resume_choice"


def test_back_after_continuing_goes_to_the_previous_question_not_to_the_stop_screen(engine):
    walk = to_step(engine, "bullying", "when")
    walk.press("common.stop")
    walk.press("resume.continue")
    walk.press("common.back")
    assert walk.step == "where"


@pytest.mark.parametrize("screen", ["open_case_choice", "category", "no_images", "stopped", "resume_choice"])
def test_words_typed_while_a_new_report_is_written_never_reach_the_earlier_case(engine, screen):
    walk = Walk(engine, WITH_CASE)
    walk.command("start")
    walk.press("menu.report")
    plan = ["report.new_case", "category.sextortion", "text", "platform.tiktok"] + ["common.skip"] * 5
    plan += ["common.stop", "/start"]
    while walk.step != screen:
        key = plan.pop(0)
        walk.text("He says he will post my photos.") if key == "text" else (
            walk.command(key[1:]) if key.startswith("/") else walk.press(key))
    assert walk.step == screen
    walk.text("please help me")
    assert not walk.of(RelayToCase) and walk.says[0].text == engine.say("en", "common.use_buttons")


def test_on_the_menu_words_go_to_the_counsellor_and_the_child_hears_which_report(engine):
    walk = Walk(engine, WITH_CASE)
    walk.command("menu")
    walk.text("They did it again today")
    assert walk.of(RelayToCase) == [RelayToCase("111111", text="They did it again today")]
    assert walk.says[0].text == engine.say("en", "relay.sent", case_number="111111")


def test_help_asks_whether_the_child_is_safe_and_raises_nothing_by_itself(engine):
    walk = Walk(engine, WITH_CASE)
    walk.command("help")
    assert not walk.of(FlagUrgent) and not walk.state.urgent and "116 111" in walk.says[-1].text
    assert {engine.say("en", "help.safe_yes"), engine.say("en", "help.safe_no")} <= set(walk.labels())
    walk.press("help.safe_yes")
    assert walk.step == "menu" and not walk.of(FlagUrgent)
    walk.command("help")
    walk.press("help.safe_no")
    assert walk.of(FlagUrgent) == [FlagUrgent(UrgentReason.SAID_NOT_SAFE)] and walk.step == "help_not_safe_told"


def test_not_safe_without_a_report_makes_the_next_one_urgent(engine):
    walk = Walk(engine)
    walk.command("help")
    walk.press("help.safe_no")
    assert walk.step == "help_not_safe_alone" and "102" in walk.says[-1].text
    walk.press("help.tell")
    assert walk.step == "category" and walk.state.urgent


@pytest.mark.parametrize("step", ["where", "category"])
def test_danger_words_are_never_kept_as_the_answer_and_misunderstood_says_sorry(engine, step):
    walk = to_step(engine, "bullying", step)
    before = dict(walk.state.answers)
    walk.text(DANGER)
    # Beside the answers, for the counsellor, once a report has begun; never as the open question's answer.
    noted = {**before, DANGER_NOTE: [DANGER]} if before else before
    assert walk.step == "crisis" and walk.state.answers == noted and walk.of(FlagUrgent)
    walk.press("crisis.misunderstood")
    assert walk.says[0].text == engine.say("en", "crisis.sorry") and walk.of(UrgentWithdrawn)
    assert walk.step == step and walk.state.answers == noted and not walk.state.urgent


def test_danger_words_in_the_childs_own_account_stay_part_of_it(engine):
    walk = to_step(engine, "bullying", "what")
    walk.text(f"They wrote: {DANGER}")
    assert walk.step == "crisis" and walk.state.answers["what"] == f"They wrote: {DANGER}" and walk.of(FlagUrgent)
    walk.press("crisis.continue")
    assert walk.step == "where"  # the report goes on


def test_the_danger_screen_can_say_not_safe(engine):
    walk = to_step(engine, "bullying", "when")
    walk.text(DANGER)
    walk.press("help.safe_no")
    assert walk.step == "help_not_safe_alone" and walk.state.urgent


def test_several_open_cases_are_listed_and_the_child_picks_where_words_go(engine):
    older = OpenCase("111111", "assigned", True, "bullying")
    newer = OpenCase("333333", "new", True, None, "consultation")
    walk = Walk(engine, Context((older, newer)))
    walk.command("mycase")
    listing = walk.says[-1].text
    assert "111111" in listing and "333333" in listing and engine.say("en", "status.assigned") in listing
    assert engine.say("en", "mycase.kind.consultation") in listing and "{" not in listing
    walk.press("mycase.pick", case_number="111111")
    assert walk.step == "case_add" and "111111" in walk.says[-1].text
    walk.text("One more thing")
    assert walk.of(RelayToCase) == [RelayToCase("111111", text="One more thing")]
    walk.command("menu")
    walk.text("and another")
    assert walk.of(RelayToCase)[0].case_number == "111111"


def test_a_question_answer_goes_to_that_question(engine):
    walk = Walk(engine, Context((CASE, OpenCase("333333", "assigned", True, None, "consultation"))))
    walk.command("menu")
    walk.do(EventKind.BUTTON, engine.convert_buttons("en", "333333")[0][0].payload)
    assert walk.of(ConvertCase) == [ConvertCase(True, "333333")] and walk.step == "convert_answered"
    walk.do(EventKind.BUTTON, engine.convert_buttons("en", "999999")[0][0].payload)
    assert not walk.of(ConvertCase)  # not an open case of this child


def test_an_old_answer_button_never_answers_a_question_not_being_asked(engine):
    walk = to_step(engine, "bullying", "reply")
    consent_button = payload("consent", 0)
    walk.press("reply.yes")
    walk.do(EventKind.BUTTON, consent_button)
    assert not walk.state.has_draft and walk.says[0].text == engine.say("en", "common.old_button")
    walk = to_step(engine, "bullying", "where")
    walk.do(EventKind.BUTTON, payload("category", 0))
    assert walk.step == "where" and walk.says[0].text == engine.say("en", "common.old_button")


def test_a_removed_step_falls_back_to_the_menu_kindly(engine):
    outcome = engine.handle(State(lang="en", step="a_step_admins_removed", history=["gone"]),
                            Incoming(EventKind.TEXT, "hello"))
    assert outcome.state.step == "menu" and outcome.actions[0].text == engine.say("en", "common.step_gone")


@pytest.mark.parametrize("category", sorted(CONTENT.image_free_categories & set(CATEGORIES)))
def test_intimate_image_categories_never_keep_a_picture(engine, category):
    walk = to_step(engine, category, "when")
    walk.photo("file-1")
    assert walk.of(DeleteIncoming) and walk.state.media == [] and "file-1" not in str(walk.state.to_dict())


def test_screenshots_are_kept_and_an_album_is_acknowledged_once(engine):
    walk = to_step(engine, "bullying", "screenshots")
    first = walk.photo("f1", "album")
    second = walk.photo("f2", "album")
    assert len([a for a in first if isinstance(a, Say)]) == 1 and not second
    assert len(walk.state.media) == 2


def test_voice_note_is_accepted_as_the_story_but_never_as_a_link(engine):
    walk = to_step(engine, "bullying", "what")
    walk.do(EventKind.MEDIA, media=MediaRef(MediaKind.VOICE, "voice-1", 9))
    assert walk.state.answers["what"] == {"voice": {"kind": "voice", "file_ref": "voice-1", "message_id": 9}}
    walk = Walk(engine)
    walk.command("link")
    walk.press("link_kind.scam")
    walk.do(EventKind.MEDIA, media=MediaRef(MediaKind.VOICE, "voice-2", 10))
    assert "link" not in walk.state.answers and walk.step == "link_url"


def test_unknown_command_after_quick_exit_shows_the_menus_buttons(engine):
    walk = Walk(engine)
    walk.command("start")
    walk.command("exit")
    walk.command("frobnicate")
    assert walk.says[0].text == engine.say("en", "common.unknown_command")
    assert engine.say("en", "menu.report") in walk.labels() and walk.step == "menu"


def test_language_is_taken_from_the_platform_and_can_be_changed(engine):
    outcome = engine.handle(None, Incoming(EventKind.COMMAND, "start", language_hint="uk-UA"))
    assert outcome.state.lang == "uk"
    walk = Walk(engine)
    walk.command("language")
    uk = [b for row in walk.says[-1].buttons for b in row if b.payload.endswith("lang:uk")]
    walk.do(EventKind.BUTTON, uk[0].payload)
    assert walk.state.lang == "uk" and walk.step == "menu"


def test_every_payload_fits_telegram_callback_data(engine):
    for step in CONTENT.steps:
        for token in ("back", "stop", "skip", "lang:sq", 99, "case:1234567890"):
            assert len(payload(step, token).encode()) <= 64


def test_a_link_report_about_abuse_material_never_keeps_a_picture(engine):
    walk = Walk(engine)
    walk.command("link")
    walk.press("link_kind.csam")
    walk.photo("file-2")
    assert walk.of(DeleteIncoming) and walk.state.media == []


@pytest.mark.parametrize("link", ["tiktok.com/@seller", "приклад.укр", "https://münchen.de/x", "@some_account"])
def test_a_link_must_look_like_one_and_is_kept_as_typed(engine, link):
    walk = Walk(engine)
    walk.command("link")
    walk.press("link_kind.scam")
    walk.text("no idea")
    assert walk.step == "link_url" and walk.says[0].text == engine.say("en", "link.invalid")
    walk.text(link)
    assert walk.state.answers["link"] == link and walk.step == "link_where"


@pytest.mark.parametrize(("kind", "reply", "shows_take_it_down"), [("csam", "reply.yes", True),
                                                                   ("scam", "reply.no", False)])
def test_a_link_report_asks_about_an_answer_and_names_only_fitting_places(engine, kind, reply, shows_take_it_down):
    walk = Walk(engine)
    walk.command("link")
    walk.press(f"link_kind.{kind}")
    if kind == "csam":
        walk.press("common.continue")
    walk.text("t.me/somebody")
    walk.press("common.skip")
    walk.press("common.skip")
    walk.press("summary.correct")
    walk.press("link_consent.counsellor")
    walk.press(reply)
    [case] = walk.of(SubmitCase)
    assert case.reply_wanted is (reply == "reply.yes")
    sent = walk.says[-1].text
    assert "cyberpolice" in sent and ("takeitdown" in sent) is shows_take_it_down and ("stopcrime" in sent) is shows_take_it_down


def test_the_staff_summary_uses_staff_words_only(engine):
    walk = to_step(engine, "sextortion", "reply")
    walk.press("reply.yes")
    [case] = walk.of(SubmitCase)
    staff_words = {value for key, value in CONTENT.texts["en"].items() if key.startswith("operator.")}
    typed = {str(value) for value in case.answers.values()}
    for line in engine.render.staff_summary("en", case.answers).splitlines():
        label, _, value = line.partition(": ")
        assert label in staff_words and (value in staff_words or value in typed), line
    assert engine.say("en", "operator.value.category.sextortion") in engine.render.staff_summary("en", case.answers)
