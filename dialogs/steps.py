"""The names the engine itself uses inside content: built-in steps and special button targets."""
from __future__ import annotations

from enum import StrEnum


class BuiltinStep(StrEnum):
    """Steps the engine sends children to on its own, so every content set must have them."""

    MENU = "menu"  # home: after a removed step, too many receipt tries, the daily cap, a screen with no buttons
    CRISIS = "crisis"  # words of danger were typed, at any step
    STOPPED = "stopped"  # Stop in the middle of a report: nothing sent, the answers kept
    RESUME_CHOICE = "resume_choice"  # a new start while a half-told report waits: continue it, or start anew?
    REPORT_INTRO = "report_intro"  # "start anew" when the child was not heading anywhere else
    RATED = "rated"  # after the child rated the help
    CONVERT_ANSWERED = "convert_answered"  # after the child answered whether their question may become a report


# Screens the engine takes a child to and back from: never remembered as a way back.
DETOURS = frozenset({BuiltinStep.CRISIS, BuiltinStep.STOPPED, BuiltinStep.RESUME_CHOICE})


class SpecialTarget(StrEnum):
    """Where a button may lead besides a step (content writes them in quotes)."""

    RESUME = "@resume"  # back to the step before the danger screen, or into the half-told report
    BACK = "@back"  # the same as pressing Back
    START_OVER = "@start_over"  # delete the half-told report and go where the child was heading
