"""Engine buttons and texts in Viber's shapes, within Viber's limits."""
from __future__ import annotations

from typing import Any

from viberbot.api.messages import TextMessage

from dialogs.render import split_text

TEXT_LIMIT = 7000  # characters in one Viber text message
MAX_BUTTONS = 24  # buttons in one keyboard
LABEL_LIMIT = 250
ACTION_BODY_LIMIT = 4096
GRID = 6  # a keyboard row is six columns wide
MIN_API_VERSION = 6  # "Silent" buttons (the payload is not shown as the child's message) need API 6


def keyboard(rows: list) -> dict[str, Any] | None:
    """Button rows [[label, payload], …] as a Viber keyboard: one, two or three buttons a row.

    Rows wider than three are broken into pairs. Past 24 buttons the last options are dropped, never
    the last row: it holds Back, Stop or Menu, the way out of every screen.
    """
    lines: list[list[tuple[str, str]]] = []
    for row in rows:
        row = [(str(label), str(data)) for label, data in row]
        lines += [row] if len(row) <= 3 else [row[i:i + 2] for i in range(0, len(row), 2)]
    lines = [line for line in lines if line]
    if not lines:
        return None
    total = sum(len(line) for line in lines)
    while total > MAX_BUTTONS:
        lines[-2].pop()
        total -= 1
        if not lines[-2]:
            del lines[-2]
    buttons = [_button(label, data, GRID // len(line)) for line in lines for label, data in line]
    return {"Type": "keyboard", "DefaultHeight": False, "InputFieldState": "regular", "Buttons": buttons}


def _button(label: str, data: str, columns: int) -> dict[str, Any]:
    if len(data.encode()) > ACTION_BODY_LIMIT:
        raise ValueError("a button payload is longer than Viber allows")
    return {"Columns": columns, "Rows": 1, "ActionType": "reply", "ActionBody": data,
            "Text": label[:LABEL_LIMIT], "Silent": True}


def text_messages(text: str, rows: list | None = None) -> list[TextMessage]:
    """A text as one or more Viber messages; the keyboard goes with the last."""
    parts = split_text(text or " ", TEXT_LIMIT)
    board = keyboard(rows or [])
    version = MIN_API_VERSION if board else None
    return [TextMessage(text=part, keyboard=board if index == len(parts) - 1 else None, min_api_version=version)
            for index, part in enumerate(parts)]


def welcome_body(bot_name: str, text: str, label: str, action: str) -> dict[str, Any]:
    """The answer to `conversation_started`: one message, sent as the HTTP response body (Viber's rule)."""
    board = keyboard([[(label, action)]])
    return {"sender": {"name": bot_name}, "type": "text", "text": split_text(text, TEXT_LIMIT)[0],
            "keyboard": board, "min_api_version": MIN_API_VERSION}
