"""Button payloads: short, versioned, naming a step and a button — never anything about the child."""
from __future__ import annotations

from enum import StrEnum

PREFIX = "o1"  # callback payloads are versioned: "o1|<step>|<token>"
RATINGS = {3: "rating.good", 2: "rating.ok", 1: "rating.bad"}  # the child's one-tap rating of the help


class OutsideButton(StrEnum):
    """Pseudo-steps for buttons the service sends outside the dialog (no content step may use these names)."""

    RATE = "rate"  # token "<score>" or "<score>:<case number>"
    CONVERT = "convert"  # token "yes" / "no", optionally ":<case number>"
    NOT_ME = "notme"  # token "no:<case number>": "That wasn't me" (the report was opened in another chat)


class Token(StrEnum):
    """Tokens of the buttons the engine adds to a step (content buttons are numbered)."""

    BACK = "back"
    STOP = "stop"
    SKIP = "skip"
    LANGUAGE = "lang:"  # + the language code
    CASE = "case:"  # + the number of the open case the child picks
    REGION = "r:"  # + a region's key, or elsewhere / unsaid (dialogs/regions.py NoRegion)


def payload(step_id: str, token: str | int) -> str:
    return f"{PREFIX}|{step_id}|{token}"


def parse_payload(data: str) -> tuple[str, str] | None:
    parts = data.split("|")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    return parts[1], parts[2]


def with_case(token: str, case_number: str | None) -> str:
    """A token for a button about one case ("yes:123456"); without a number, the token alone."""
    return f"{token}:{case_number}" if case_number else token


def split_case(token: str) -> tuple[str, str | None]:
    value, _, number = token.partition(":")
    return value, number or None
