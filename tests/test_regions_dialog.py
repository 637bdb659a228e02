""""Where do you live?": asked once, early in a report, only when a region has a chat of its own; the
answer is a region key on the case and nothing finer; a region's own hours and helplines."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pytest

from dialogs.actions import SubmitCase
from dialogs.engine import Engine
from dialogs.model import Context, EventKind
from dialogs.payloads import payload
from dialogs.regions import hours_for
from dialogs.validate import check_content, load_content
from tests.dialog_walk import Walk
from tests.support import TEST_CONTENT

CONTENT = load_content(TEST_CONTENT)
ASKED = frozenset({"kyiv"})


def engine(regions_with_chats: frozenset[str] = ASKED) -> Engine:
    return Engine(CONTENT, "UA", "en", regions_with_chats=regions_with_chats)


def report(walk: Walk) -> None:
    walk.command("start")
    walk.press("menu.report")
    if walk.step == "open_case_choice":
        walk.press("report.new_case")


def finish(walk: Walk) -> SubmitCase:
    walk.press("category.bullying")
    walk.text("Someone keeps writing mean things.")
    for key in ("platform.tiktok", "when.today", "answer.no", "who.stranger", "who.adult", "age.young",
                "screenshots.done", "summary.correct", "consent.counsellor", "reply.no"):
        if key in {label for label in walk.engine.content.texts["en"]} and \
                walk.engine.say("en", key) in walk.labels():
            walk.press(key)
    submitted = [action for action in walk.actions if isinstance(action, SubmitCase)]
    assert submitted, f"no report sent; standing at {walk.step}"
    return submitted[0]


def test_the_question_comes_early_with_the_regions_in_the_childs_language_and_ways_out():
    walk = Walk(engine(), lang="uk")
    report(walk)
    assert walk.step == "report_region"
    assert walk.says[-1].text == CONTENT.text("uk", "region.question")
    labels = walk.labels()
    for name in ("Київ", "Вінниця", "Львів", CONTENT.text("uk", "region.elsewhere"), CONTENT.text("uk", "region.unsaid"),
                 CONTENT.text("uk", "common.back"), CONTENT.text("uk", "common.stop")):
        assert name in labels


def test_a_named_region_is_kept_on_the_case_as_its_key_only():
    walk = Walk(engine())
    report(walk)
    walk.do(EventKind.BUTTON, payload("report_region", "r:kyiv"))
    assert walk.step == "category"
    case = finish(walk)
    assert case.region == "kyiv"
    assert "kyiv" not in str(case.answers) and "Kyiv" not in str(case.answers)


@pytest.mark.parametrize("answer", ["unsaid", "elsewhere"])
def test_a_child_who_skips_it_is_never_asked_again_in_that_conversation(answer):
    walk = Walk(engine())
    report(walk)
    walk.do(EventKind.BUTTON, payload("report_region", f"r:{answer}"))
    assert walk.step == "category"
    assert finish(walk).region is None
    report(walk)  # a second report, and a question
    assert walk.step == "category"
    walk.command("start")
    walk.press("menu.ask")
    assert walk.step != "ask_region"


def test_nobody_is_asked_where_no_region_has_a_chat_of_its_own():
    walk = Walk(engine(frozenset()))
    report(walk)
    assert walk.step == "category"
    assert finish(walk).region is None


def test_back_shows_the_question_again_and_the_answer_can_change():
    walk = Walk(engine())
    report(walk)
    walk.do(EventKind.BUTTON, payload("report_region", "r:kyiv"))
    walk.press("common.back")
    assert walk.step == "report_region"
    walk.do(EventKind.BUTTON, payload("report_region", "r:lviv"))
    assert walk.step == "category"
    assert walk.state.region == "lviv"


def test_a_stale_region_button_gets_a_clear_answer_and_changes_nothing():
    walk = Walk(engine())
    report(walk)
    before = walk.state.copy()
    walk.do(EventKind.BUTTON, payload("report_region", "r:odesa"))
    assert walk.says[0].text == CONTENT.text("en", "region.unknown")
    assert walk.step == "report_region" and walk.state.region is None
    assert walk.state.answers == before.answers
    assert "Kyiv" in walk.labels()  # asked again, with the regions served now


def test_a_regions_own_helplines_and_hours_are_shown_else_the_countrys():
    lviv, kyiv = engine(), engine()
    assert "15 99" in lviv.render.helplines("en", region="lviv")
    assert "116 111" not in lviv.render.helplines("en", region="lviv")
    assert "102" in lviv.render.helplines("en", region="lviv")  # emergency numbers are the country's
    assert "116 111" in kyiv.render.helplines("en", region="kyiv")
    assert lviv.render.office_hours("en", "lviv").endswith("10:00–16:00")
    assert kyiv.render.office_hours("en", "kyiv").endswith("09:00–21:00")
    saturday_noon = datetime(2026, 12, 5, 10, tzinfo=timezone.utc)
    assert not hours_for(CONTENT, "UA", "lviv").is_open(saturday_noon)
    assert hours_for(CONTENT, "UA", "kyiv").is_open(saturday_noon)


def test_is_someone_online_follows_the_childs_region():
    walk = Walk(engine(), Context(online=True, online_in=(("lviv", False),)))
    walk.command("start")
    walk.press("menu.ask")
    assert walk.step == "ask_region"
    walk.do(EventKind.BUTTON, payload("ask_region", "r:lviv"))
    assert walk.step == "ask_offline"
    other = Walk(engine(), Context(online=True, online_in=(("lviv", False),)))
    other.command("start")
    other.press("menu.ask")
    other.do(EventKind.BUTTON, payload("ask_region", "r:kyiv"))
    assert other.step != "ask_offline"


@pytest.fixture
def content_copy(tmp_path):
    copy = tmp_path / "content"
    shutil.copytree(TEST_CONTENT, copy, symlinks=False)
    return copy


def test_check_content_names_a_bad_key_and_a_missing_name(content_copy):
    regions = content_copy / "regions.yaml"
    regions.write_text(regions.read_text().replace("  vinnytsia:", "  Vinnytsia:").replace(
        'name: {en: "Lviv", uk: "Львів"}', 'name: {en: "Lviv"}'), encoding="utf-8")
    errors = [str(error) for error in check_content(content_copy)[0]]
    assert any("regions.yaml" in error and "'Vinnytsia'" in error for error in errors), errors
    assert any("UA.lviv: no name in 'uk'" in error for error in errors), errors


def test_a_region_step_without_next_is_named(content_copy):
    flows = content_copy / "flows/report.yaml"
    flows.write_text(flows.read_text().replace("    text: region.question\n    next: category\n",
                                               "    text: region.question\n"), encoding="utf-8")
    errors = [str(error) for error in check_content(content_copy)[0]]
    assert any("report_region" in error and "needs 'next'" in error for error in errors), errors
