"""Periods of statistics: what `/stats week`, `2026-11` or `--from/--to` mean, and their columns."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

WEEKLY_UP_TO_DAYS = 62  # longer periods are shown month by month
MIN_WEEK_DAYS = 4
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


class Step(StrEnum):
    WEEK = "week"
    MONTH = "month"


class PeriodError(ValueError):
    """A period that cannot be shown; `key` is the text that says why (content/texts/staff)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True, slots=True)
class Column:
    """One week or month of a period (cut to the period), or the whole period."""

    first: date
    last: date


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date

    @property
    def step(self) -> Step:
        return Step.WEEK if (self.last - self.first).days < WEEKLY_UP_TO_DAYS else Step.MONTH

    @property
    def whole(self) -> Column:
        return Column(self.first, self.last)

    @property
    def key(self) -> str:
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def columns(self) -> list[Column]:
        """Weeks (Monday to Sunday) or calendar months, cut to the period. A week cut to fewer than
        MIN_WEEK_DAYS days joins its neighbour: a column of a day or two only makes small counts."""
        columns, start = [], self.first
        while start <= self.last:
            if self.step is Step.WEEK:
                end = start + timedelta(days=6 - start.weekday())
            else:
                end = _next_month(start) - timedelta(days=1)
            columns.append(Column(start, min(end, self.last)))
            start = min(end, self.last) + timedelta(days=1)
        if self.step is Step.WEEK and len(columns) > 2:
            if _days(columns[0]) < MIN_WEEK_DAYS:
                columns[:2] = [Column(columns[0].first, columns[1].last)]
            if _days(columns[-1]) < MIN_WEEK_DAYS:
                columns[-2:] = [Column(columns[-2].first, columns[-1].last)]
        return columns

    def column_of(self, day: date) -> Column | None:
        return next((column for column in self.columns() if column.first <= day <= column.last), None)


def parse_period(text: str | None, today: date) -> Period:
    """`week` (last Monday to Sunday), `month` (last calendar month), `2026-11`, `2026-11-01..2026-11-30`.
    A period that has begun ends today; one that has not begun, or ends before it begins, is refused."""
    text = (text or "week").strip().lower()
    if text == Step.WEEK:
        return last_week(today)
    if text == Step.MONTH:
        first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        return Period(first, _next_month(first) - timedelta(days=1))
    if match := MONTH.match(text):
        first = _date(f"{match[1]}-{match[2]}-01")
        return between(first, _next_month(first) - timedelta(days=1), today)
    if match := RANGE.match(text):
        return between(_date(match[1]), _date(match[2]), today)
    raise PeriodError("stats.error.period")


def between(first: date, last: date, today: date) -> Period:
    """A period from `first` to `last`; the part after today is left out."""
    if last < first:
        raise PeriodError("stats.error.backwards")
    if first > today:
        raise PeriodError("stats.error.future")
    return Period(first, min(last, today))


def parse_day(text: str) -> date:
    return _date(text)


def last_week(today: date) -> Period:
    """The last whole week, Monday to Sunday, before `today`'s week."""
    monday = today - timedelta(days=today.weekday() + 7)
    return Period(monday, monday + timedelta(days=6))


def _days(column: Column) -> int:
    return (column.last - column.first).days + 1


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError("stats.error.period") from None


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)
