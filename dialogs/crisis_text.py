"""Text as the crisis matcher reads it: sentences of words, each word in a plain and a sound-alike form.

Children write fast, on whatever keyboard they have: without apostrophes or diacritics, with letters
held down ("dieeee"), with emoji between words, and Ukrainian or Russian in Latin letters ("hochu
vmerty"). Phrases in content/crisis.yaml go through the same functions, so both sides meet halfway:

- plain: lower case, no apostrophes, no diacritics (ā→a, ë→e, ç→c), a letter said once however often
  it is typed, digits inside a word read as the letters they stand for ("k1ll" → "kill");
- sound-alike, for Ukrainian or Russian typed in Latin letters: Cyrillic phrases and every usual
  Latin spelling of them fold into one upper-case alphabet, so "вмерти", "vmerty" and "vmerti" all
  read VMERTI; h/g/kh/x, y/i/j, sh/sch/s, ch/ts/c, ya/ja/ia, yu/ju/iu... each become one letter.
  Text typed in Cyrillic is matched in Cyrillic: folded this far, "біля" (near) would read as
  "била" (she beat) and "сіла" (sat down) as "сила".
"""
from __future__ import annotations

import re
import unicodedata

# Every apostrophe a phone or keyboard types, dropped: "п'ю", "пʼю" and "пю" are one word.
_APOSTROPHES = re.compile("['’ʼ‘`´′‛ʹ]")
_COMBINING = re.compile(r"[\u0300-\u036f]")
# й is a letter of its own, not и with a mark: "мій" (my) must not read "ми" (we).
_SHORT_I = re.compile("и\u0306")
# Letters one keyboard has and the other lacks, read as their neighbour (є/е, ґ/г, ъ/ь).
_CYRILLIC_KEYS = (("є", "е"), ("ґ", "г"), ("ъ", "ь"))
_REPEATS = re.compile(r"([^\W\d_])\1+")
# A word, or the end of a sentence. A phrase never reaches across a sentence end; an ellipsis
# ("хочу... вмерти") or a comma is only a pause.
_TOKENS = re.compile(r"([^\W_]+)|([!?;\n]|(?<![.])[.](?![.]))")
_CYRILLIC = re.compile(r"[а-яёіїєґўы]")
_LATIN = re.compile(r"[a-z]")
_LATIN_OR_DIGIT = re.compile(r"[a-z0-9]")
# A word that needs a look of its own: digits for letters ("k1ll"), or Latin letters inside Cyrillic.
_MIXED = re.compile(r"\d|[a-z][а-яёіїєґўы]|[а-яёіїєґўы][a-z]")
_LEET = str.maketrans("0134578", "oieastb")

# Latin letters that look like Cyrillic ones, for words typed half on each keyboard ("хочy").
_HOMOGLYPHS = str.maketrans("aceopxykmthbi3460", "асеорхукмтнвізчбо")
# Russian "-ться" sounds and is typed as "-tsya": one letter, like ц.
_TS = re.compile(r"ть?с")
_CYRILLIC_SOUNDS = str.maketrans({
    "а": "A", "б": "B", "в": "V", "г": "H", "ґ": "H", "д": "D", "е": "E", "є": "E", "э": "E", "ж": "Z",
    "з": "Z", "и": "I", "і": "I", "ї": "I", "й": "I", "ы": "I", "к": "K", "л": "L", "м": "M", "н": "N",
    "о": "O", "ё": "O", "п": "P", "р": "R", "с": "S", "ш": "S", "щ": "S", "т": "T", "у": "U", "ў": "U",
    "ф": "F", "х": "H", "ц": "C", "ч": "C", "ь": None, "ъ": None, "ю": "U", "я": "A",
})
# Latin spellings of Cyrillic, longest first: a glide before a vowel is part of the vowel (ya, ju, ie).
# Replaced one after the other over the whole text (a C loop each), then every other letter at once.
_LATIN_CLUSTERS = (
    ("shch", "S"), ("sch", "S"), ("sh", "S"), ("ch", "C"), ("zh", "Z"), ("kh", "H"), ("ts", "C"), ("tc", "C"),
    ("tz", "C"), ("ck", "K"),
    *((glide + vowel, vowel.upper()) for vowel in "aueoi" for glide in "yji"),
)
_LATIN_SOUNDS = str.maketrans("abcdefghijklmnopqrstuvwxyz4", "ABCDEFHHIIKLMNOPKRSTUVVHIZC")


# A word of a message as (plain form, sound-alike form); for a word typed in Cyrillic both are the
# same, as Cyrillic text is matched by its plain form only. Plain tuples: a message has hundreds.
Word = tuple[str, str]


def plain_form(word: str) -> str:
    """A cleaned word as typed, with digits inside Latin words read as letters ("k1l" → "kil")."""
    if _CYRILLIC.search(word):
        return _REPEATS.sub(r"\1", word.translate(_HOMOGLYPHS)) if _LATIN_OR_DIGIT.search(word) else word
    if not word.isalpha() and not word.isdigit():
        word = _REPEATS.sub(r"\1", word.translate(_LEET))
    return word


def sound_form(word: str) -> str:
    """A word as Cyrillic phrases are matched: "вішатимусь", "vishatymus", "вишатимусь" → VISATIMUS."""
    if _CYRILLIC.search(word):
        sounds = _TS.sub("ц", word.translate(_HOMOGLYPHS)).translate(_CYRILLIC_SOUNDS)
    else:
        sounds = _latin_sounds(word)
    return _REPEATS.sub(r"\1", sounds)


def _latin_sounds(text: str) -> str:
    for cluster, sound in _LATIN_CLUSTERS:
        text = text.replace(cluster, sound)
    return text.translate(_LATIN_SOUNDS)


def clean(text: str) -> str:
    """Lower case, no apostrophes, no diacritics, no held-down letters."""
    text = _SHORT_I.sub("й", unicodedata.normalize("NFKD", _APOSTROPHES.sub("", text.casefold())))
    for key, neighbour in _CYRILLIC_KEYS:
        text = text.replace(key, neighbour)
    return _REPEATS.sub(r"\1", _COMBINING.sub("", text))


def sentences(text: str) -> list[list[Word]]:
    """The text's sentences, each a list of its words in both forms; punctuation and emoji are dropped."""
    plain = clean(text)
    # Latin letters only change into letters and Cyrillic ones not at all, so the words of both forms
    # of the text line up one by one, and a Cyrillic word is the same in both.
    sound = _REPEATS.sub(r"\1", _latin_sounds(plain)) if _LATIN.search(plain) else plain
    look_closer = _MIXED.search(plain) is not None
    result: list[list[Word]] = []
    words: list[Word] = []
    for (word, stop), (heard, _) in zip(_TOKENS.findall(plain), _TOKENS.findall(sound)):
        if not stop:
            words.append((plain_form(word), heard) if look_closer else (word, heard))
        elif words:
            result.append(words)
            words = []
    if words:
        result.append(words)
    return result


def is_cyrillic(word: str) -> bool:
    return bool(_CYRILLIC.search(word))
