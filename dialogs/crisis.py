"""Words of immediate danger or self-harm, in any shipped language, found in any text."""
from __future__ import annotations

import re


# Ukrainian is typed with several apostrophes (ʼ U+02BC, ’ U+2019, ‘ U+2018, `): all read as '.
_APOSTROPHES = str.maketrans({"ʼ": "'", "’": "'", "‘": "'", "`": "'"})


class CrisisMatcher:
    """A single phrase matches anywhere; a single word matches as a word start (so stems work)."""

    def __init__(self, words_by_language: dict[str, tuple[str, ...]]) -> None:
        # Every language's words are checked: a child may write in another language than the menu's.
        phrases = sorted({word.translate(_APOSTROPHES) for words in words_by_language.values() for word in words},
                         key=len, reverse=True)
        parts = [re.escape(p) if " " in p else r"(?<!\w)" + re.escape(p) for p in phrases]
        self._pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def matches(self, text: str) -> bool:
        return bool(self._pattern and self._pattern.search(text.translate(_APOSTROPHES).lower()))
