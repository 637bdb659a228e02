"""Whether what a child typed looks like a link or an account name. Never opened or fetched."""
from __future__ import annotations

import re

# A host is labels of letters (any script: приклад.укр, münchen.de), digits and hyphens; the last
# label is letters only, or punycode (xn--p1acf). An optional scheme, port, path, query, fragment.
_HOST = r"(?:[^\W_](?:[\w-]*[^\W_])?\.)+(?:[^\W\d_]{2,}|xn--[a-z0-9-]+)"
_URL = rf"(?:https?://)?(?:www\.)?{_HOST}(?::\d{{1,5}})?(?:[/?#]\S*)?"
# An account: @name, as Telegram, Instagram or TikTok write it (letters of any script, digits, _ and .).
_ACCOUNT = r"@[\w.]{3,}"
_LINK = re.compile(rf"^(?:{_URL}|{_ACCOUNT})$", re.IGNORECASE)
_TRAILING = ".,;:!?)»”\"'"  # punctuation a child may add after a pasted link


def looks_like_link(text: str) -> bool:
    return bool(_LINK.match(text.strip().rstrip(_TRAILING)))
