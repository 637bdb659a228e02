"""Words of immediate danger or self-harm, in any shipped language, found in any text.

The phrases of content/crisis.yaml (syntax in dialogs/crisis_phrases.py) are compiled once per
content load into one table of word forms. A message is cut into words once; each word is looked up
whole and by its beginnings (for stems); a phrase is looked at only when the rarest-looking of its
places (the one with the longest words) has a word in the message, and walked only when every place
has one. This keeps a message of a few hundred characters well under a millisecond however many phrases
the admins add.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dialogs.content_files import Located, Problem, read_yaml
from dialogs.crisis_phrases import MAX_GAP, NUMBER, Phrase, PhraseError, Term, parse_phrase
from dialogs.crisis_text import Word, sentences

# A dropped letter is forgiven inside words this long (never the first or last letter); a doubled
# one always is, since held-down letters are read once. Stems need more letters than whole words:
# "погрож*" less one letter would start "порожній" (empty), "растлени*" would start "растение" (plant).
TYPO_WORD = 8
TYPO_STEM = 9
_DOUBLES = re.compile(r"(\w)\1")


@dataclass(frozen=True, slots=True)
class _Place:
    gap: int  # words that may stand before this place
    words: frozenset[int]  # one-word choices, as term ids
    runs: tuple[tuple[int, ...], ...]  # choices of several words ("in_front_of")
    needs: frozenset[int]  # every first word of every choice: one must be in the sentence


@dataclass(frozen=True, slots=True)
class _Compiled:
    source: str
    places: tuple[_Place, ...]
    any_order: bool


class CrisisMatcher:
    """Finds any danger phrase of any language in a text, unless the words found are a 'not:' phrase."""

    def __init__(self, words_by_language: dict[str, tuple[str, ...]]) -> None:
        # Every language's phrases are checked: a child may write in another language than the menu's.
        self._tables = _compile(tuple(source for phrases in words_by_language.values() for source in phrases))

    def matches(self, text: str) -> bool:
        return self.first_match(text) is not None

    def first_match(self, text: str) -> str | None:
        """The crisis.yaml phrase found in the text, for tests and for admins trying phrases."""
        tables = self._tables
        for words in sentences(text):
            seen = [tables.terms(word) for word in words]
            present = frozenset().union(*seen)
            harmless: list[tuple[int, int]] | None = None
            for phrase, start, end in _found(tables.danger, seen, present):
                if harmless is None:
                    harmless = [(s, e) for _, s, e in _found(tables.not_danger, seen, present)]
                if not any(s < end and start < e for s, e in harmless):
                    return phrase.source
        return None


@lru_cache(maxsize=4)
def _compile(sources: tuple[str, ...]) -> _Tables:
    # Once per set of phrases: every engine built from the same content, and a reload that leaves
    # crisis.yaml alone, share the tables.
    return _Tables(sources)


class _Tables:
    """Word forms to term ids, and each phrase indexed by its rarest-looking place."""

    def __init__(self, sources: tuple[str, ...]) -> None:
        self._ids: dict[Term, int] = {}
        self._exact: dict[str, list[int]] = {}
        self._stems: dict[str, list[int]] = {}
        self.danger: dict[int, list[_Compiled]] = {}
        self.not_danger: dict[int, list[_Compiled]] = {}
        for source in sources:
            try:
                phrase = parse_phrase(source)
            except PhraseError:
                continue  # check-content reports it; the other phrases still protect
            if phrase.slots:
                self._add(phrase)
        self._stem_lengths = sorted({len(form) for form in self._stems})

    def terms(self, word: Word) -> frozenset[int]:
        """The ids of every phrase word this word of a message is (whole, or by a stem it starts with)."""
        plain, sound = word
        found: list[int] = []
        for form in (plain,) if sound == plain else (plain, sound):
            found += self._exact.get(form, ())
            if form.isdigit() and len(form) > 1:
                found += self._exact.get(NUMBER, ())
            for length in self._stem_lengths:
                if length > len(form):
                    break
                found += self._stems.get(form[:length], ())
        return frozenset(found)

    def _add(self, phrase: Phrase) -> None:
        places = []
        for slot in phrase.slots:
            choices = [tuple(self._term_id(term) for term in alternative) for alternative in slot.alternatives]
            places.append(_Place(slot.gap, frozenset(c[0] for c in choices if len(c) == 1),
                                 tuple(c for c in choices if len(c) > 1), frozenset(c[0] for c in choices)))
        compiled = _Compiled(phrase.source, tuple(places), phrase.any_order)
        index = self.not_danger if phrase.not_danger else self.danger
        # Indexed by the place whose shortest choice is longest: "kill*" rather than "he/she/i".
        anchor = max(phrase.slots, key=lambda slot: min(len(a[0].forms[0]) for a in slot.alternatives))
        for alternative in anchor.alternatives:
            index.setdefault(self._term_id(alternative[0]), []).append(compiled)

    def _term_id(self, term: Term) -> int:
        if term not in self._ids:
            term_id = self._ids[term] = len(self._ids)
            table = self._stems if term.stem else self._exact
            shortest = TYPO_STEM if term.stem else TYPO_WORD
            for form in {typo for form in term.forms for typo in _with_typos(form, shortest)}:
                table.setdefault(form, []).append(term_id)
        return self._ids[term]


def _found(index: dict[int, list[_Compiled]], seen: list[frozenset[int]],
           present: frozenset[int]) -> Iterator[tuple[_Compiled, int, int]]:
    """Every (phrase, first word, word after the last) of the index found in one sentence."""
    tried: set[int] = set()
    for term_id in present:
        for phrase in index.get(term_id, ()):
            if id(phrase) in tried:
                continue
            tried.add(id(phrase))
            if any(place.needs.isdisjoint(present) for place in phrase.places):
                continue  # some place has no word anywhere in the sentence
            if phrase.any_order:
                for start, end in _spans_in_any_order(phrase.places, seen):
                    yield phrase, start, end
                continue
            first = phrase.places[0].needs
            for start, terms in enumerate(seen):
                if not first.isdisjoint(terms):
                    for end in _ends(phrase.places, 0, start, seen):
                        yield phrase, start, end


def _ends(places: tuple[_Place, ...], at: int, position: int, seen: list[frozenset[int]]) -> Iterator[int]:
    if at == len(places):
        yield position
        return
    place = places[at]
    last_start = position if at == 0 else min(position + place.gap, len(seen) - 1)
    for start in range(position, last_start + 1):
        if not place.words.isdisjoint(seen[start]):
            yield from _ends(places, at + 1, start + 1, seen)
        for run in place.runs:
            end = start + len(run)
            if end <= len(seen) and all(run[i] in seen[start + i] for i in range(len(run))):
                yield from _ends(places, at + 1, end, seen)


def _spans_in_any_order(places: tuple[_Place, ...], seen: list[frozenset[int]]) -> Iterator[tuple[int, int]]:
    """(first word, word after the last) of each way to find every place, in any order, few words apart."""
    found = [[(start, start + 1) for start in range(len(seen)) if not place.words.isdisjoint(seen[start])]
             + [(start, start + len(run)) for run in place.runs for start in range(len(seen) - len(run) + 1)
                if all(run[i] in seen[start + i] for i in range(len(run)))] for place in places]

    widest = MAX_GAP + sum(max((len(run) for run in place.runs), default=1) for place in places)

    def pick(at: int, taken: frozenset[int], first: int, last: int, length: int) -> Iterator[tuple[int, int]]:
        if at == len(found):
            if last - first - length <= MAX_GAP:
                yield first, last
            return
        for start, end in found[at]:
            span = range(start, end)
            low, high = min(first, start), max(last, end)
            if taken.isdisjoint(span) and high - low <= widest:
                yield from pick(at + 1, taken.union(span), low, high, length + end - start)

    yield from pick(0, frozenset(), len(seen), 0, 0)


def _with_typos(form: str, shortest: int) -> set[str]:
    if len(form) < shortest:
        return {form}
    # Dropping a letter between two equal ones leaves a double that cleaned text never has; read once it
    # would be another word ("повісилася" less "с" is "повісила", she hung a picture): leave it out.
    return {form} | {typo for i in range(1, len(form) - 1) if not _DOUBLES.search(typo := form[:i] + form[i + 1:])}


def check_crisis_phrases(root: Path, languages: Iterable[str], errors: list[Problem], warnings: list[Problem]) -> None:
    """check-content: a malformed phrase is an error, one that can never raise the alarm a warning."""
    path = root / "crisis.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""  # reading the content already named the file
    found_errors, found_warnings = _problems(text, root, tuple(languages))
    errors.extend(found_errors)
    warnings.extend(found_warnings)


@lru_cache(maxsize=4)
def _problems(text: str, root: Path, languages: tuple[str, ...]) -> tuple[tuple[Problem, ...], tuple[Problem, ...]]:
    # Keyed by the file's text: loading the same content again (every engine, every reload) is free.
    errors: list[Problem] = []
    warnings: list[Problem] = []
    data = read_yaml(root / "crisis.yaml", root, [])
    if data is None:
        return (), ()  # reading the content already named the file and what is wrong with it
    if not isinstance(data, Located):
        return (Problem(f"{root.name}/crisis.yaml", 1, "must list languages, each with its phrases"),), ()
    lines = text.splitlines()
    for lang in languages:
        if not data.get(lang):
            errors.append(Problem(data.file, 1, f"no crisis words for language '{lang}'"))
    phrases: list[tuple[int, Phrase]] = []
    first_line: dict[str, int] = {}
    for lang, entries in data.items():
        line = data.key_lines[lang]
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, str):
                continue  # reading the content already named it
            line = _line_of(entry, lines, line)
            try:
                phrase = parse_phrase(entry)
            except PhraseError as error:
                errors.append(Problem(data.file, line, f"crisis phrase \"{entry}\": {error}"))
                continue
            warnings.extend(Problem(data.file, line, f"crisis phrase \"{entry}\": {warning}")
                            for warning in phrase.warnings)
            key = f"{lang}:{entry.strip().casefold()}"
            if key in first_line:
                warnings.append(Problem(data.file, line,
                                        f"crisis phrase \"{entry}\" is written twice (also line {first_line[key]})"))
            first_line.setdefault(key, line)
            phrases.append((line, phrase))
    matcher = CrisisMatcher({"all": tuple(phrase.source for _, phrase in phrases)})
    for line, phrase in phrases:
        if phrase.slots and not phrase.not_danger and matcher.first_match(phrase.example) is None:
            warnings.append(Problem(data.file, line, f"crisis phrase \"{phrase.source}\": typed as written "
                                                     f"(\"{phrase.example}\") it raises no alarm: "
                                                     "a 'not:' phrase hides it"))
    return tuple(errors), tuple(warnings)


def _line_of(entry: str, lines: list[str], after: int) -> int:
    """The line of a list entry, searched from the line of the entry before it (YAML keeps no lines of lists)."""
    for quoted in (f'"{entry}"', f"'{entry}'", entry):
        for number in range(after, len(lines)):
            if quoted in lines[number]:
                return number + 1
    return after
