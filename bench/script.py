"""What a simulated child does: a whole report, step by step, with the bot's answers predicted.

The dialog engine is pure, so the number of messages the bot sends back for each step is known in
advance by running the same content through it; a simulated child acts again as soon as that many
messages have arrived.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from dialogs.actions import CaseSubmitted, SubmitCase
from dialogs.engine import Engine
from dialogs.model import Context, EventKind, Incoming, Say

WHAT = "They post mean comments under my photos every day."

# The same path as tests/support.py `report()`: bullying, Instagram, this week, ongoing, a peer…
REPORT: tuple[tuple[str, str], ...] = (
    ("text", "/start"),
    ("press", "menu.report"),
    ("press", "category.bullying"),
    ("text", WHAT),
    ("press", "platform.instagram"),
    ("press", "when.week"),
    ("press", "answer.yes"),
    ("press", "who.known"),
    ("press", "who.peer"),
    ("press", "age.middle"),
    ("press", "screenshots.done"),
    ("press", "summary.correct"),
    ("press", "consent.counsellor"),
    ("press", "reply.yes"),
)
MID_REPORT = 4  # after /start, "Tell what happened", a category and what happened (typed): asked where


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # "text" (type it) or "press" (the inline button with this label)
    value: str  # the text, or the button's label as the child sees it
    answers: int  # how many messages the bot sends back
    # What each of those messages says (slots such as {case_number} match any text): a message that
    # does not match (a duplicate, a stray) is not taken as the answer.
    expect: tuple[re.Pattern[str], ...] = field(default=(), compare=False)


def _pattern(text: str) -> re.Pattern[str]:
    parts = re.split(r"\{[a-z_]+\}", text)
    return re.compile(".+?".join(re.escape(part) for part in parts), re.DOTALL)


def report_script(engine: Engine, lang: str = "en") -> list[Action]:
    """The report as actions; raises if the content no longer offers a button the script presses."""
    state, buttons, script = None, {}, []
    for kind, value in REPORT:
        if kind == "text":
            shown = value
            if value.startswith("/"):
                event = Incoming(EventKind.COMMAND, text=value[1:], language_hint=lang)
            else:
                event = Incoming(EventKind.TEXT, text=value, language_hint=lang)
        else:
            shown = engine.say(lang, value)
            if shown not in buttons:
                raise LookupError(f"the report script presses {value!r} ({shown!r}), which the bot does not "
                                  f"offer at that step; offered: {sorted(buttons)}")
            event = Incoming(EventKind.BUTTON, text=buttons[shown], language_hint=lang)
        outcome = engine.handle(state, event, Context())
        actions = outcome.actions
        if any(isinstance(action, SubmitCase) for action in actions):
            # The bot's answer names the new case: a number and a code that any text matches.
            outcome = engine.handle(outcome.state, CaseSubmitted("{case_number}", "{receipt_code}"), Context())
            actions += outcome.actions
        says = [action for action in actions if isinstance(action, Say)]
        if not says:
            raise LookupError(f"the bot answers nothing to {value!r}")
        buttons = {button.label: button.payload for say in says for row in say.buttons for button in row}
        script.append(Action(kind, shown, len(says), tuple(_pattern(say.text) for say in says)))
        state = outcome.state
    return script


def echo_script(steps: int = len(REPORT)) -> list[Action]:
    """For the echo bot: a child types, the bot repeats it."""
    texts = [f"message {i + 1}: {WHAT}" for i in range(steps)]
    return [Action("text", text, 1, (_pattern(text),)) for text in texts]
