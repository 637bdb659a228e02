"""Links, domains and @handles in what a child wrote, made inert before staff or police see them.

A clickable link in a staff chat can be opened by a mistaken tap, can show a preview fetched from the
site (which tells the site that someone looked), and can lead a counsellor to abuse material. So
every link, bare domain, e-mail address and @handle a child typed is shown defanged, readable and
copyable but never live: hxxps://example[.]org/page, example[.]org, name[@]mail[.]com, [@]someone.
"""
from __future__ import annotations

import re

# A scheme, or a domain: labels of letters (any script), digits and hyphens, then a top-level label
# of two or more letters (any script, so приклад.укр too) or an IDN's punycode; then a path, if any.
DOMAIN = r"(?:[^\W_](?:[\w-]*[^\W_])?\.)+(?:[^\W\d_]{2,}|xn--[\w-]+)"
_LINK = re.compile(
    rf"(?i)(?:\b(?:https?|ftp)://\S+|(?<![\w@.]){DOMAIN}(?::\d+)?(?:[/?#][^\s]*)?|[\w.+-]+@{DOMAIN}|(?<![\w@])@\w{{3,}})"
)


def inert(text: str) -> str:
    """The text with every link, domain, e-mail address and @handle defanged."""
    return _LINK.sub(lambda found: defang(found.group(0)), text)


def defang(link: str) -> str:
    """hxxps://example[.]com/x and [@]name: readable and copyable by staff, never a live link."""
    return re.sub(r"(?i)\bhttp", lambda m: "hxxp" if m.group(0) == "http" else "HXXP", link) \
        .replace(".", "[.]").replace("@", "[@]")
