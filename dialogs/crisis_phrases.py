"""The phrase syntax of content/crisis.yaml: stems (*), choices (/), joined words (_), gaps (...), any order (+).

    хоч* ... вмерти/померти      "хочу вмерти", "хочеться вже нарешті померти"
    he/she ... outside my house/home/in_front_of_my_door
    took ... # ... pills         "#" is any number of 10 or more
    стою + мосту/даху            "+": these places in any order, at most 3 other words among them
    not: dying of laughter       a danger phrase sharing a word with this one is ignored
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from dialogs.crisis_text import is_cyrillic, sentences, sound_form

GAP = "..."
MAX_GAP = 3  # words that may stand where a phrase has "..."
ANY_ORDER = "+"
NOT_DANGER = "not:"
NUMBER = "#"  # any number of 10 or more: "took 20 pills", not "took 2 pills for my headache"
_SENTENCE_END = re.compile(r"[!?;]|(?<![.])[.](?![.])")
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
    any_order: bool  # "+" between the places: in any order, at most MAX_GAP other words among them
    not_danger: bool
    warnings: tuple[str, ...]
    example: str  # the phrase as a child could type it: first choices, no "*", "..." or "_"


@lru_cache(maxsize=8192)  # checking the content and building its matcher read each phrase: once is enough
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
    any_order = ANY_ORDER in parts
    if any_order and (GAP in parts or parts[1::2] != [ANY_ORDER] * (len(parts) // 2) or len(parts) % 2 == 0):
        raise PhraseError(f"with '{ANY_ORDER}', put it between every two places and use no '{GAP}' "
                          f"(keep words together with _: \"стою + на_мосту\")")
    parts = [part for part in parts if part != ANY_ORDER]
    slots: list[Slot] = []
    example: list[str] = []
    gap = 0
    for part in parts:
        if part != GAP:
            first = part.split("/")[0]
            example.append("20" if first == NUMBER else first.rstrip("*").replace("_", " "))
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
    return Phrase(source, tuple(slots), any_order, not_danger, tuple(warnings), " ".join(example))


def _alternative(word: str, warnings: list[str]) -> tuple[Term, ...]:
    if word == NUMBER:
        return (Term((NUMBER,), False),)
    stem = word.endswith("*")
    bare = word[:-1] if stem else word
    if not bare or "*" in bare:
        raise PhraseError(f"'{word}': '*' may only end a word, and a choice between '/' may not be empty")
    forms = _forms(bare)
    if not forms:
        warnings.append(f"'{word}' has no letters once punctuation and emoji are taken out: it is left out")
        return ()
    last = len(forms) - 1
    return tuple(Term(word_forms, stem and i == last) for i, word_forms in enumerate(forms))


@lru_cache(maxsize=16384)  # half the choices of crisis.yaml repeat a word of another phrase
def _forms(bare: str) -> tuple[tuple[str, ...], ...]:
    """Each word of a choice as it is looked up: as written, and a Cyrillic one also by its sound."""
    words = [plain for sentence in sentences(bare) for plain, _ in sentence]
    return tuple((plain, sound_form(plain)) if is_cyrillic(plain) else (plain,) for plain in words)
