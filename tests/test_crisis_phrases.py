"""The labelled messages of tests/crisis/: every danger one raises the alarm, no everyday one does.

Run with `-s` to see recall and false alarms per language. A miss is fixed in content/crisis.yaml.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dialogs.crisis import CrisisMatcher
from dialogs.validate import load_content

ROOT = Path(__file__).resolve().parent.parent
LABELLED = ROOT / "tests" / "crisis"
# The shipped languages need a broad set; Russian, which many children write, a set of its own.
SMALLEST_SET = {"uk": 150, "en": 150, "lv": 150, "sq": 150, "ru": 100}


@pytest.fixture(scope="module")
def content():
    return load_content(ROOT / "content")


@pytest.fixture(scope="module")
def matcher(content) -> CrisisMatcher:
    return CrisisMatcher(content.crisis_words)


def labelled(lang: str) -> dict[str, list[str]]:
    return yaml.safe_load((LABELLED / f"{lang}.yaml").read_text(encoding="utf-8"))


def test_every_labelled_danger_message_raises_the_alarm_and_no_everyday_one_does(matcher):
    rows = [f"{'lang':<5}{'danger':>7}{'caught':>7}{'recall':>8}{'safe':>6}{'false':>6}"]
    failures = []
    for lang in SMALLEST_SET:
        sets = labelled(lang)
        missed = [text for text in sets["danger"] if not matcher.matches(text)]
        false_alarms = [(text, matcher.first_match(text)) for text in sets["safe"] if matcher.matches(text)]
        caught = len(sets["danger"]) - len(missed)
        rows.append(f"{lang:<5}{len(sets['danger']):>7}{caught:>7}{caught / len(sets['danger']):>8.1%}"
                    f"{len(sets['safe']):>6}{len(false_alarms):>6}")
        failures += [f"{lang} missed: {text}" for text in missed]
        failures += [f"{lang} false alarm: {text}  <- \"{phrase}\"" for text, phrase in false_alarms]
    table = "\n".join(rows)
    print(f"\nCrisis phrases, labelled messages in tests/crisis/:\n{table}")
    assert not failures, table + "\n" + "\n".join(failures)


@pytest.mark.parametrize("lang", sorted(SMALLEST_SET))
def test_each_language_has_a_broad_labelled_set_of_both_kinds(lang):
    sets = labelled(lang)
    assert set(sets) == {"danger", "safe"}
    assert len(sets["danger"]) + len(sets["safe"]) >= SMALLEST_SET[lang]
    assert len(sets["safe"]) >= 40 and len(sets["danger"]) >= 2 * len(sets["safe"]) - 20
    assert len(set(sets["danger"] + sets["safe"])) == len(sets["danger"] + sets["safe"]), "a message is listed twice"

