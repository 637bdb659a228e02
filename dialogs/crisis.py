"""Words of immediate danger or self-harm, in any shipped language, found in any text.

The phrases of content/crisis.yaml are compiled once per content load into a table of word forms;
a message is cut into words once, each word looked up (whole, and each of its beginnings for stems),
and only phrases whose first word was seen are followed further. A message of a few hundred
characters takes a small fraction of a millisecond however many phrases there are.
"""
from __future__ import annotations

import re
from pathlib import Path
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dialogs.content_files import Located, Problem, read_yaml
from dialogs.crisis_text import Word, is_cyrillic, plain_form, sentences, sound_form

GAP = "..."
MAX_GAP = 3  # words that may stand where a phrase has "..."
NOT_DANGER = "not:"
# A dropped letter is forgiven inside words this long (never the first or last letter); a doubled
# one always is, since held-down letters are read once. Stems need more letters than whole words:
# "погрож*" less one letter would start "порожній" (empty) and "похоже" (looks like).
TYPO_WORD = 7
TYPO_STEM = 8
_SENTENCE_END = re.compile(r"[!?;]|(?<![.])[.](?![.])")
_DOUBLES = re.compile(r"(\w)\1+")
_NOT_SYNTAX = re.compile(r"[()\[\]{}|]")


class PhraseError(ValueError):
    """A phrase the matcher cannot read; the message says what to write instead."""


@dataclass(frozen=True, slots=True)
class Term:
    """One word of a phrase as it is looked up: its forms, and whether longer words count (a stem)."""

    forms: tuple[str, ...]  # a Cyrillic word also has its sound-alike form, for text typed in Latin
    stem: bool


@dataclass(frozen=True, slots=True)
class Slot:
    """One place in a phrase: any of its alternatives (each one word or a few), after up to `gap` words."""

    alternatives: tuple[tuple[Term, ...], ...]
    gap: int


@dataclass(frozen=True, slots=True)
class Phrase:
    source: str
    slots: tuple[Slot, ...]
    not_danger: bool
    warnings: tuple[str, ...]
    example: str  # the phrase as a child could type it: first choices, no "*", "..." or "_"


def parse_phrase(source: str) -> Phrase:
    """Read one line of crisis.yaml, e.g. "хоч* ... вмерти/померти" or "not: dying of laughter"."""
    text = source.strip().replace("…", f" {GAP} ")
    not_danger = text.casefold().startswith(NOT_DANGER)
    if not_danger:
        text = text[len(NOT_DANGER):]
    if _NOT_SYNTAX.search(text):
        raise PhraseError("( ) [ ] { } | are not part of a phrase: use / between choices, or write two phrases")
    warnings: list[str] = []
    if _SENTENCE_END.search(text.replace(GAP, " ")):
        warnings.append("it has . ! ? or ; inside, and a phrase is never found across the end of a sentence")
    parts = text.replace(GAP, f" {GAP} ").split()
    if parts and GAP in (parts[0], parts[-1]):
        raise PhraseError(f"'{GAP}' must stand between two words")
    slots: list[Slot] = []
    example: list[str] = []
    gap = 0
    for part in parts:
        if part != GAP:
            example.append(part.split("/")[0].rstrip("*").replace("_", " "))
        if part == GAP:
            if gap:
                raise PhraseError(f"two '{GAP}' in a row; one already allows up to {MAX_GAP} words")
            gap = MAX_GAP
            continue
        alternatives = tuple(terms for terms in (_alternative(word, warnings) for word in part.split("/")) if terms)
        if alternatives:
            slots.append(Slot(alternatives, gap))
        gap = 0
    if not slots:
        warnings.append("no letters are left once punctuation and emoji are taken out, so it never matches")
    elif len(slots) == 1 and any(len(a) == 1 and a[0].stem and len(a[0].forms[0]) < 4 for a in slots[0].alternatives):
        warnings.append("a single stem this short is found inside many everyday words: expect false alarms")
    return Phrase(source, tuple(slots), not_danger, tuple(warnings), " ".join(example))


def _alternative(word: str, warnings: list[str]) -> tuple[Term, ...]:
    stem = word.endswith("*")
    bare = word[:-1] if stem else word
    if not bare or "*" in bare:
        raise PhraseError(f"'{word}': '*' may only end a word, and a choice between '/' may not be empty")
    words = [w for sentence in sentences(bare) for w in sentence]
    if not words:
        warnings.append(f"'{word}' has no letters once punctuation and emoji are taken out: it is left out")
        return ()
    last = len(words) - 1
    return tuple(Term((w.plain, sound_form(w.plain)) if is_cyrillic(w.plain) else (w.plain,), stem and i == last)
                 for i, w in enumerate(words))


class CrisisMatcher:
    """Finds any danger phrase of any language in a text, unless the words found are a 'not:' phrase."""

    def __init__(self, words_by_language: dict[str, tuple[str, ...]]) -> None:
        # Every language's phrases are checked: a child may write in another language than the menu's.
        self._ids: dict[Term, int] = {}
        self._exact: dict[str, list[int]] = {}
        self._stems: dict[str, list[int]] = {}
        self._danger: dict[int, list[Phrase]] = {}
        self._not_danger: dict[int, list[Phrase]] = {}
        for phrases in words_by_language.values():
            for source in phrases:
                try:
                    phrase = parse_phrase(source)
                except PhraseError:
                    continue  # check-content reports it; the other phrases still protect
                if phrase.slots:
                    self._add(phrase)
        self._stem_lengths = sorted({len(form) for form in self._stems})

    def matches(self, text: str) -> bool:
        return self.first_match(text) is not None

    def first_match(self, text: str) -> str | None:
        """The crisis.yaml phrase found in the text, for tests and for admins trying phrases."""
        for words in sentences(text):
            seen = [self._terms(word) for word in words]
            harmless: list[tuple[int, int]] | None = None
            for phrase, start, end in self._found(self._danger, seen):
                if harmless is None:
                    harmless = [(s, e) for _, s, e in self._found(self._not_danger, seen)]
                if not any(s < end and start < e for s, e in harmless):
                    return phrase.source
        return None

    # -- compiling --------------------------------------------------------------------------------

    def _add(self, phrase: Phrase) -> None:
        index = self._not_danger if phrase.not_danger else self._danger
        for alternative in phrase.slots[0].alternatives:
            first = self._term_id(alternative[0])
            if phrase not in index.setdefault(first, []):
                index[first].append(phrase)
        for slot in phrase.slots:
            for alternative in slot.alternatives:
                for term in alternative:
                    self._term_id(term)

    def _term_id(self, term: Term) -> int:
        if term not in self._ids:
            term_id = self._ids[term] = len(self._ids)
            table = self._stems if term.stem else self._exact
            for form in {typo for form in term.forms for typo in _with_typos(form, TYPO_STEM if term.stem else TYPO_WORD)}:
                table.setdefault(form, []).append(term_id)
        return self._ids[term]

    # -- matching ---------------------------------------------------------------------------------

    def _terms(self, word: Word) -> frozenset[int]:
        found: list[int] = []
        for form in (word.plain, word.sound) if word.sound else (word.plain,):
            found += self._exact.get(form, ())
            for length in self._stem_lengths:
                if length > len(form):
                    break
                found += self._stems.get(form[:length], ())
        return frozenset(found)

    def _found(self, index: dict[int, list[Phrase]], seen: list[frozenset[int]]) -> Iterator[tuple[Phrase, int, int]]:
        for start, terms in enumerate(seen):
            tried: set[int] = set()
            for term_id in terms:
                for phrase in index.get(term_id, ()):
                    if id(phrase) not in tried:
                        tried.add(id(phrase))
                        for end in self._ends(phrase.slots, 0, start, seen, first=True):
                            yield phrase, start, end

    def _ends(self, slots: tuple[Slot, ...], at: int, position: int, seen: list[frozenset[int]],
              first: bool = False) -> Iterator[int]:
        if at == len(slots):
            yield position
            return
        slot = slots[at]
        last_start = position if first else min(position + slot.gap, len(seen) - 1)
        for start in range(position, last_start + 1):
            for alternative in slot.alternatives:
                end = start + len(alternative)
                if end <= len(seen) and all(self._ids[term] in seen[start + i] for i, term in enumerate(alternative)):
                    yield from self._ends(slots, at + 1, end, seen)


def _with_typos(form: str, shortest: int) -> set[str]:
    if len(form) < shortest:
        return {form}
    # Dropping a letter between two equal ones leaves a double that cleaned text never has; read once it
    # would be another word ("повісилася" less "с" is "повісила", she hung a picture): leave it out.
    return {form} | {typo for i in range(1, len(form) - 1) if not _DOUBLES.search(typo := form[:i] + form[i + 1:])}


def check_crisis_phrases(root: Path, languages: Iterable[str], errors: list[Problem], warnings: list[Problem]) -> None:
    """check-content: a malformed phrase is an error, one that can never raise the alarm a warning."""
    data = read_yaml(root / "crisis.yaml", root, [])
    if not isinstance(data, Located):
        errors.append(Problem(str(root / "crisis.yaml"), 1, "no crisis words"))  # the reading error is listed too
        return
    lines = (root / "crisis.yaml").read_text(encoding="utf-8").splitlines()
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
            warnings.extend(Problem(data.file, line, f"crisis phrase \"{entry}\": {warning}") for warning in phrase.warnings)
            key = f"{lang}:{entry.strip().casefold()}"
            if key in first_line:
                warnings.append(Problem(data.file, line, f"crisis phrase \"{entry}\" is written twice (also line {first_line[key]})"))
            first_line.setdefault(key, line)
            phrases.append((line, phrase))
    matcher = CrisisMatcher({"all": tuple(phrase.source for _, phrase in phrases)})
    for line, phrase in phrases:
        if phrase.slots and not phrase.not_danger and matcher.first_match(phrase.example) is None:
            warnings.append(Problem(data.file, line, f"crisis phrase \"{phrase.source}\": typed as written "
                                                     f"(\"{phrase.example}\") it raises no alarm; a 'not:' phrase hides it"))


def _line_of(entry: str, lines: list[str], after: int) -> int:
    """The line of a list entry, searched from the line of the entry before it (YAML keeps no lines of lists)."""
    for number in range(after, len(lines)):
        if entry in lines[number]:
            return number + 1
    return after
