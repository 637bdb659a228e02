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
