"""The content checker names file and line of every mistake an admin can make; a bad reload changes nothing."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dialogs.content import ContentInvalid
from dialogs.validate import check_content, load_content

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content"


@pytest.fixture
def content_copy(tmp_path) -> Path:
    copy = tmp_path / "content"
    shutil.copytree(CONTENT, copy)
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def messages(root: Path) -> list[str]:
    errors, _ = check_content(root)
    return [str(error) for error in errors]


def test_the_shipped_content_has_no_mistakes_and_no_warnings():
    errors, warnings = check_content(CONTENT)
    assert errors == [] and warnings == []


def test_every_shipped_language_has_every_text():
    content = load_content(CONTENT)
    assert set(content.languages) == {"uk", "en", "lv", "sq"}
    reference = set(content.texts["en"])
    for lang, texts in content.texts.items():
        assert set(texts) == reference, lang
        assert all(value.strip() for value in texts.values()), lang


def test_every_country_has_numbers_named_in_every_language():
    content = load_content(CONTENT)
    assert set(content.helplines) == {"UA", "LV", "AL"}
    for help in content.helplines.values():
        assert help.emergency and help.helplines


def test_a_button_to_an_unknown_step_is_named_with_its_file_and_line(content_copy):
    edit(content_copy / "flows/report.yaml", "goto: what}", "goto: whaat}")
    found = messages(content_copy)
    assert any("report.yaml:" in m and "unknown step 'whaat'" in m for m in found)
    line = int(next(m for m in found if "whaat" in m).split(":")[1])
    assert line > 1


def test_an_unreachable_step_and_a_dead_end_are_found(content_copy):
    with (content_copy / "flows/tips.yaml").open("a", encoding="utf-8") as file:
        file.write("  lonely:\n    text: tips.menu\n    back: false\n    stop: false\n")
    found = messages(content_copy)
    assert any("'lonely': cannot be reached" in m for m in found)
    assert any("'lonely': is a dead end" in m for m in found)


def test_a_text_missing_in_one_language_is_named(content_copy):
    edit(content_copy / "texts/lv.yaml", "\n  intro:", "\n  intro_typo:")
    found = messages(content_copy)
    assert any("texts/lv.yaml" in m and "'report.intro'" in m and "missing" in m for m in found)


def test_mismatched_slots_between_languages_are_found(content_copy):
    edit(content_copy / "texts/uk.yaml", "{case_number}", "{case_numbr}")
    assert any("texts/uk.yaml:" in m and "slots" in m for m in messages(content_copy))


def test_a_malformed_phone_number_is_found(content_copy):
    edit(content_copy / "helplines.yaml", 'phone: "102"', 'phone: "call 102 now"')
    assert any("helplines.yaml:" in m and "malformed phone number" in m for m in messages(content_copy))


def test_broken_yaml_is_reported_with_its_line_not_a_traceback(content_copy):
    path = content_copy / "flows/main.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n  broken: [unclosed\n", encoding="utf-8")
    found = messages(content_copy)
    assert any(m.startswith("content/flows/main.yaml:") and "not valid YAML" in m for m in found)


def test_the_checker_command_exits_nonzero_on_mistakes(content_copy):
    edit(content_copy / "flows/main.yaml", "goto: tips}", "goto: nowhere}")
    env = {"CONTENT_DIR": str(content_copy), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "run_bot.py", "check-content"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "unknown step 'nowhere'" in result.stdout


def test_a_bad_reload_keeps_the_old_content_live(content_copy):
    from app.build import reload_content
    from dialogs.engine import Engine

    engine = Engine(load_content(content_copy), "UA", "en")
    before = engine.content
    edit(content_copy / "flows/main.yaml", "goto: tips}", "goto: nowhere}")
    mistakes = reload_content(engine, content_copy)
    assert mistakes and engine.content is before
    with pytest.raises(ContentInvalid):
        load_content(content_copy)
    edit(content_copy / "flows/main.yaml", "goto: nowhere}", "goto: tips}")
    edit(content_copy / "texts/en.yaml", "What would you like to do?", "What shall we do?")
    assert reload_content(engine, content_copy) == []
    assert engine.say("en", "menu.text") == "What shall we do?"


def test_a_syntax_error_is_reported_alone_not_with_its_knock_on_effects(content_copy):
    path = content_copy / "texts/lv.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("menu:\n", "menu:\n  text: [unclosed\n", 1),
                    encoding="utf-8")
    errors, warnings = check_content(content_copy)
    assert len(errors) == 1 and "texts/lv.yaml" in str(errors[0]) and "not valid YAML" in str(errors[0])
    assert warnings == []


@pytest.mark.parametrize(("key", "value", "flagged"), [
    ("common.skip", "Skip ➡️", True),  # short, but a real sentence left in English
    ("menu.text", "What would you like to do?", True),
    ("age.young", "9–12", False),  # no letters
    ("exit.neutral", "👋", False),
    ("common.continue", "OK", False),  # no word of four letters: abbreviations are often written alike
])
def test_untranslated_texts_are_flagged_at_any_length_but_not_numbers_or_emoji(content_copy, key, value, flagged):
    group, name = key.split(".")
    for lang in ("en", "sq"):  # Albanian reads exactly as English; Ukrainian and Latvian do not
        path = content_copy / f"texts/{lang}.yaml"
        text = path.read_text(encoding="utf-8")
        line_start = text.index(f"\n  {name}: ", text.index(f"\n{group}:\n")) + 1
        line_end = text.index("\n", line_start)
        path.write_text(text[:line_start] + f'  {name}: "{value}"' + text[line_end:], encoding="utf-8")
    _, warnings = check_content(content_copy)
    assert any(f"'{key}'" in str(w) and "untranslated" in str(w) for w in warnings) is flagged


def test_a_text_copied_from_the_default_language_is_flagged_too(content_copy):
    edit(content_copy / "texts/lv.yaml", 'continue: "Turpināt ➡️"', 'continue: "Далі ➡️"')
    _, warnings = check_content(content_copy, default_language="uk")
    assert any("'common.continue'" in str(w) and "uk.yaml" in str(w) for w in warnings)


def test_names_written_alike_in_every_language_are_not_flagged():
    _, warnings = check_content(CONTENT)
    assert not any("platform.instagram" in str(w) for w in warnings)


def test_a_summarised_answer_without_staff_wording_is_an_error(content_copy):
    edit(content_copy / "texts/staff/en.yaml", '    category: "Kind of harm"\n', "")
    edit(content_copy / "texts/staff/uk.yaml", "      sextortion: ", "      sextortion_typo: ")
    found = messages(content_copy)
    assert any("staff/en.yaml" in m and "'operator.field.category'" in m for m in found)
    assert any("staff/uk.yaml" in m and "'operator.value.category.sextortion'" in m for m in found)


def test_a_helpline_only_for_an_unknown_answer_is_an_error(content_copy):
    edit(content_copy / "helplines.yaml", "      only_for: [csam]", "      only_for: [cssam]")
    assert any("helplines.yaml:" in m and "cssam" in m for m in messages(content_copy))


def test_a_case_list_without_next_and_a_step_named_like_the_bots_buttons_are_errors(content_copy):
    edit(content_copy / "flows/case.yaml", "    next: case_add\n", "")
    edit(content_copy / "flows/main.yaml", "  rated:\n", "  rate:\n")
    found = messages(content_copy)
    assert any("'my_case': a case_status step needs 'next'" in m for m in found)
    assert any("'rate': this name is taken" in m for m in found)


def test_the_tests_own_content_is_valid():
    errors, _ = check_content(Path(__file__).resolve().parent / "content")
    assert errors == []


QUESTION = {"en": ("Have you told an adult you trust?", "Told an adult", "Child told an adult"),
            "uk": ("Чи знає про це дорослий, якому ти довіряєш?", "Дорослий знає", "Дорослий, якому дитина довіряє, знає"),
            "lv": ("Vai kāds pieaugušais, kuram uzticies, par to zina?", "Pieaugušais zina", "Pieaugušais, kuram bērns uzticas, zina"),
            "sq": ("A i ke treguar një të rrituri që i beson?", "I tregoi një të rrituri", "Fëmija i tregoi një të rrituri")}


def test_adding_a_question_as_content_readme_describes_works_everywhere(content_copy):
    """The recipe in content/README.md, followed to the letter: the checker is content and a child meets the question."""
    from dialogs.engine import Engine
    from tests.dialog_walk import explore

    step = ('  told_adult:\n    text: report.told_adult\n    field: told_adult\n    summary: summary.told_adult\n'
            '    optional: true\n    next: evidence\n    buttons:\n      - [{label: answer.yes, value: "yes", goto: evidence},'
            ' {label: answer.no, value: "no", goto: evidence}]\n\n')
    report = content_copy / "flows/report.yaml"
    text = report.read_text(encoding="utf-8")
    age = text[text.index("  age_group:\n"):text.index("  evidence:\n")]
    report.write_text(text.replace(age, age.replace("evidence", "told_adult") + step), encoding="utf-8")
    for lang, (question, label, staff) in QUESTION.items():
        edit(content_copy / f"texts/{lang}.yaml", "\nreport:\n", f'\nreport:\n  told_adult: "{question}"\n')
        edit(content_copy / f"texts/{lang}.yaml", "\nsummary:\n", f'\nsummary:\n  told_adult: "{label}"\n')
        edit(content_copy / f"texts/staff/{lang}.yaml", "  field:\n", f'  field:\n    told_adult: "{staff}"\n')
    assert check_content(content_copy) == ([], [])
    engine = Engine(load_content(content_copy), "UA", "en")
    samples, _ = explore(engine)
    assert "told_adult" in samples
    answers = {"category": "bullying", "told_adult": "no"}
    assert "Child told an adult: no" in engine.render.staff_summary("en", answers)
