"""How the crisis matcher reads text and phrases, and how check-content names a broken phrase."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dialogs.content import ContentInvalid
from dialogs.crisis import CrisisMatcher
from dialogs.validate import check_content, load_content

CONTENT = Path(__file__).resolve().parent.parent / "content"


def finds(phrase: str, text: str) -> bool:
    return CrisisMatcher({"any": (phrase,)}).matches(text)


@pytest.mark.parametrize("text", [
    "Я ВІШАТИМУСЬ", "я вішатимусь!!!", "я вішатимусь 😭😭", "я вішааатимусь", "я вишатимусь",
])
def test_case_punctuation_emoji_and_held_down_letters_do_not_matter(text):
    assert finds("вішатимусь/вишатимусь", text)


@pytest.mark.parametrize("text", ["я вбʼю себе", "я вб'ю себе", "я вб’ю себе", "я вб`ю себе", "я вбю себе"])
def test_every_apostrophe_and_none_at_all_read_the_same(text):
    assert finds("вб'ю себе", text)


@pytest.mark.parametrize(("phrase", "text"), [
    ("nogalināšos", "es nogalinasos"), ("nogalinasos", "es nogalināšos"), ("dua të vdes", "dua te vdes"),
    ("çati", "cati"), ("suicide", "SUİCİDE"),
])
def test_diacritics_are_ignored_on_both_sides(phrase, text):
    assert finds(phrase, text)


@pytest.mark.parametrize("text", [
    "hochu vmerty", "hochu vmerti", "khochu vmerty", "xochu vmerty", "xo4u vmerty", "HOCHU VMERTYYY", "хочy вмерти",
])
def test_ukrainian_typed_in_latin_letters_is_found_by_the_cyrillic_phrase(text):
    assert finds("хоч* ... вмерти", text)


@pytest.mark.parametrize("text", ["ne hochu zhyty", "ne hochu zhiti", "ne khochu zhyt", "ne hochu zhit'"])
def test_the_usual_latin_spellings_of_one_cyrillic_word_meet(text):
    assert finds("не хоч* ... жити/жить", text)


@pytest.mark.parametrize("text", ["pokinchyty z soboiu", "pokinchyty z soboyu", "pokinchiti z soboju"])
def test_ya_ju_and_iu_spellings_of_a_soft_vowel_meet(text):
    assert finds("покінч* ... собою", text)


def test_text_typed_in_cyrillic_is_matched_letter_for_letter():
    # Folded to sounds, "біля" (near) would be "била" (she beat) and the mother waiting at school a danger.
    assert not finds("мене ... била", "мама чекає мене біля школи")
    assert finds("мене ... била", "вона мене била")


def test_a_gap_allows_up_to_three_words_and_no_more():
    assert finds("хоч* ... вмерти", "хочу вмерти")
    assert finds("хоч* ... вмерти", "хочу вже нарешті просто вмерти")
    assert not finds("хоч* ... вмерти", "хочу вже нарешті просто тихо вмерти")


def test_words_without_a_gap_must_follow_each_other():
    assert finds("want to die", "i want to die")
    assert not finds("want to die", "i want to just die")


def test_a_phrase_never_reaches_across_the_end_of_a_sentence_but_a_comma_or_an_ellipsis_is_only_a_pause():
    assert not finds("want ... die", "I want to play. Die hard is a film")
    assert not finds("want ... die", "I want to play\ndie hard is a film")
    assert finds("want ... die", "i want, like, to die")
    assert finds("хоч* ... вмерти", "хочу... вмерти")


def test_a_stem_takes_any_ending_and_a_whole_word_only_itself():
    assert finds("kill* myself", "killing myself") and finds("kill* myself", "killed myself")
    assert not finds("kill myself", "killing myself")
    assert finds("повіс*", "повішусь") is False and finds("повіс*", "повісився")


def test_choices_and_joined_words_stand_for_one_place():
    phrase = "he ... outside/in_front_of/behind my house"
    assert finds(phrase, "he is in front of my house") and finds(phrase, "he is behind my house")
    assert not finds(phrase, "he is in my house")


def test_places_joined_by_plus_are_found_in_any_order_with_at_most_three_words_among_them():
    phrase = "мужик/хтось + стоїть + будинк*/підʼїзд*"
    assert finds(phrase, "під моїм будинком стоїть якийсь мужик") and finds(phrase, "мужик стоїть біля будинку")
    assert not finds(phrase, "мужик сьогодні вранці дуже довго там стоїть біля будинку")
    assert not finds(phrase, "мужик стоїть")


def test_a_number_sign_stands_for_any_number_of_ten_or_more():
    assert finds("took ... # ... pills", "i took like 20 of my pills")
    assert not finds("took ... # ... pills", "i took 2 pills for my headache")


def test_a_dropped_letter_inside_a_long_word_is_forgiven_but_not_at_its_ends_or_in_a_short_word():
    assert finds("самогубство", "самогубсво") and finds("вішатимусь", "вішатимсь")
    assert not finds("самогубство", "амогубство") and not finds("самогубство", "самогубств")
    assert not finds("вмерти", "вмрти")


def test_a_dropped_letter_that_would_make_another_word_is_not_forgiven():
    # "повісилася" less its "с" reads "повісила": she hung a picture.
    assert not finds("повісилася", "повісила картину")


def test_a_not_danger_phrase_silences_only_the_danger_words_it_shares():
    matcher = CrisisMatcher({"en": ("want* ... die", "not: die of laughter")})
    assert not matcher.matches("i wanted to die of laughter")
    assert matcher.matches("i wanted to die of laughter, now i just want to die")  # a comma is no sentence end
    assert matcher.matches("i want to die")


def test_the_phrase_found_is_named_for_tests_and_admins():
    matcher = CrisisMatcher({"en": ("kill* myself", "want* ... die")})
    assert matcher.first_match("i want to kill myself") == "kill* myself"
    assert matcher.first_match("i like games") is None


def test_a_malformed_phrase_leaves_the_others_working():
    matcher = CrisisMatcher({"en": ("kill ... ... myself", "*", "want* ... die")})
    assert matcher.matches("i want to die")


def test_the_shipped_first_phrase_of_each_language_typed_as_written_raises_the_alarm():
    # The engine tests type these, and an admin trying a phrase types it as it stands in the file.
    content = load_content(CONTENT)
    matcher = CrisisMatcher(content.crisis_words)
    assert all(matcher.matches(phrases[0]) for phrases in content.crisis_words.values())


# -- check-content -------------------------------------------------------------------------------


@pytest.fixture
def crisis_file(tmp_path) -> Path:
    shutil.copytree(CONTENT, tmp_path / "content")
    return tmp_path / "content" / "crisis.yaml"


def add_phrase(crisis_file: Path, phrase: str) -> int:
    """Put a phrase after the first one of 'en'; return its line."""
    lines = crisis_file.read_text(encoding="utf-8").splitlines()
    at = lines.index("en:") + 3
    lines.insert(at - 1, f'  - "{phrase}"')
    crisis_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return at


@pytest.mark.parametrize("phrase", ["... want to die", "want ... ... die", "kil*l myself", "want//die",
                                    "want (to) die", "kill *", "стою + на мосту", "want + ... die"])
def test_a_malformed_phrase_is_an_error_naming_file_and_line_and_stops_the_load(crisis_file, phrase):
    line = add_phrase(crisis_file, phrase)
    errors, _ = check_content(crisis_file.parent)
    assert [(e.file, e.line) for e in errors] == [("content/crisis.yaml", line)]
    assert phrase in errors[0].message
    with pytest.raises(ContentInvalid):
        load_content(crisis_file.parent)


@pytest.mark.parametrize(("phrase", "why"), [
    ("want to die. now", "end of a sentence"),
    ("😭 💀", "never matches"),
    ("suicide squad", "a 'not:' phrase hides it"),
    ("ki*", "short"),
])
def test_a_phrase_that_can_never_raise_the_alarm_is_a_warning_naming_file_and_line(crisis_file, phrase, why):
    line = add_phrase(crisis_file, phrase)
    errors, warnings = check_content(crisis_file.parent)
    assert errors == []
    assert any(w.file == "content/crisis.yaml" and w.line == line and why in w.message for w in warnings)


def test_a_phrase_written_twice_in_one_language_is_a_warning(crisis_file):
    line = add_phrase(crisis_file, "kms")
    _, warnings = check_content(crisis_file.parent)
    assert any("written twice" in w.message and line in (w.line, int(w.message.split("also line ")[1].rstrip(")")))
               for w in warnings if "written twice" in w.message)


def test_a_language_without_crisis_words_is_an_error(crisis_file):
    text = crisis_file.read_text(encoding="utf-8")
    crisis_file.write_text(text.replace("\nlv:\n", "\nlv_old:\n"), encoding="utf-8")
    errors, _ = check_content(crisis_file.parent)
    assert any("no crisis words for language 'lv'" in e.message for e in errors)


def test_an_unquoted_not_phrase_is_an_error_that_says_to_quote_it(crisis_file):
    text = crisis_file.read_text(encoding="utf-8")
    crisis_file.write_text(text.replace('  - "not: hit me up"', "  - not: hit me up"), encoding="utf-8")
    with pytest.raises(ContentInvalid, match="double quotes"):
        load_content(crisis_file.parent)
