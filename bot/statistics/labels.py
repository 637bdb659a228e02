"""Words for the figures in the staff language (content/texts/staff/<lang>.yaml, `stats.*`)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from bot.statistics.figures import ALL, NOT_SAID, TOTAL, Figures, Timing
from bot.statistics.period import Column, Period
from storage import StatEvent

Say = Callable[..., str]  # say(text_key, **slots) in the staff language
NAMED = {"harm": "stats.harm.", "chi": "stats.chi.", "kind": "operator.kind."}


class Labels:
    def __init__(self, say: Say) -> None:
        self.say = say
        self.months = say("stats.months").split()

    def text(self, key: str, fallback: str, **slots: object) -> str:
        """The text, or `fallback` where content has none (a value it does not name)."""
        found = self.say(key, **slots)
        return fallback if found == key else found

    def measure(self, measure: StatEvent) -> str:
        return self.say(f"stats.measure.{measure.value}")

    def breakdown(self, breakdown: str) -> str:
        return self.say(f"stats.breakdown.{breakdown}")

    def value(self, measure: StatEvent, breakdown: str, value: str) -> str:
        if breakdown == ALL:
            return self.say("stats.total")
        if value == NOT_SAID:
            return self.say("stats.not_said")
        if breakdown == "outcome":
            prefix = "stats.rating." if measure is StatEvent.RATED else "operator.outcome."
            return self.text(prefix + value, value)
        if breakdown == "age_group":
            return value.replace("-", "–")
        return self.text(NAMED[breakdown] + value, value) if breakdown in NAMED else value

    def _day(self, day: date, with_year: bool = False) -> str:
        return f"{day.day} {self.months[day.month - 1]}" + (f" {day.year}" if with_year else "")

    def span(self, span: Column | Period, with_year: bool = False) -> str:
        """`2–8 Nov`, `28 Oct – 3 Nov`, or a whole calendar month as `Nov 2026`."""
        start, end = span.first, span.last
        if start.day == 1 and end.month == start.month and (end + timedelta(days=1)).day == 1:
            return f"{self.months[start.month - 1]} {start.year}"
        if (start.month, start.year) == (end.month, end.year):
            return f"{start.day}–{self._day(end, with_year)}"
        return f"{self._day(start, with_year and start.year != end.year)} – {self._day(end, with_year)}"

    def column(self, column: str, figures: Figures) -> str:
        if column == TOTAL:
            return self.say("stats.total")
        return self.span(next(c for c in figures.columns if c.first.isoformat() == column))

    def duration(self, minutes: int) -> str:
        """`25 min`, `3 h 05 min`, `4 d` (days from two days on)."""
        if minutes < 60:
            return self.say("stats.time.minutes", minutes=minutes)
        if minutes < 48 * 60:
            return self.say("stats.time.hours", count=minutes // 60, minutes=f"{minutes % 60:02d}")
        return self.say("stats.time.days", count=round(minutes / (24 * 60)))

    def scale(self, minutes: int) -> str:
        """A tick of the time axis: `10 min`, `6 h`, `7 d`."""
        if minutes < 60:
            return self.say("stats.time.minutes", minutes=minutes)
        if minutes < 24 * 60:
            return self.say("stats.time.whole_hours", count=minutes // 60)
        return self.say("stats.time.days", count=minutes // (24 * 60))

    def timing(self, timing: Timing) -> str:
        """`to acceptance: median 25 min, 9 in 10 within 1 h 10 min`"""
        return (f"{self.say(f'stats.time.{timing.measure.value}')}: {self.say('stats.time.median')} "
                f"{self.duration(timing.median)}, {self.say('stats.time.p90')} {self.duration(timing.p90)}")

