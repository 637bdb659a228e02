"""Whether what a child typed looks like a link or an account name. Never opened or fetched."""
from __future__ import annotations

import re

from dialogs.inert import DOMAIN

# A domain in any script (приклад.укр, münchen.de) or its punycode; an optional scheme, port, path.
_URL = rf"(?:https?://)?{DOMAIN}(?::\d{{1,5}})?(?:[/?#]\S*)?"
# An account: @name, as Telegram, Instagram or TikTok write it (letters of any script, digits, _ and .).
_ACCOUNT = r"@[\w.]{3,}"
_LINK = re.compile(rf"^(?:{_URL}|{_ACCOUNT})$", re.IGNORECASE)
_TRAILING = ".,;:!?)»”\"'"  # punctuation a child may add after a pasted link


def looks_like_link(text: str) -> bool:
    return bool(_LINK.match(text.strip().rstrip(_TRAILING)))
