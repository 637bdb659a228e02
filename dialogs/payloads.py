"""Button payloads: short, versioned, naming a step and a button — never anything about the child."""
from __future__ import annotations

PREFIX = "o1"  # callback payloads are versioned: "o1|<step>|<token>"
RATING_STEP = "rate"  # pseudo-steps for buttons the service sends outside the dialog
CONVERT_STEP = "convert"
RATINGS = {3: "rating.good", 2: "rating.ok", 1: "rating.bad"}  # the child's one-tap rating of the help


def payload(step_id: str, token: str | int) -> str:
    return f"{PREFIX}|{step_id}|{token}"


def parse_payload(data: str) -> tuple[str, str] | None:
    parts = data.split("|")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    return parts[1], parts[2]
