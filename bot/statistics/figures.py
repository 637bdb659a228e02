"""The figures of a period, from the recorded counters: pure, and already suppressed for publication.

Every count of every measure (a StatEvent) is given for the whole period and for each week or month
in it, in total and broken down by region, channel, language, age group, kind, kind of harm, its CHI
category and outcome. All of a measure's counts are suppressed together (bot/statistics/suppression.py),
with every sum a reader could form between them. Response times are given only for groups whose count
is published and at least STATS_MIN_CELL.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.statistics.harms import HarmMap
from bot.statistics.period import Column, Period
from bot.statistics.suppression import Mark, suppress
from storage import StatCount, StatEvent

TOTAL = "total"  # the column of the whole period
ALL = "all"  # the breakdown of a measure's total; its one value is ""
NOT_SAID = "not_said"
BREAKDOWNS = ("region", "channel", "language", "age_group", "kind", "harm", "chi", "outcome")
TIMED = (StatEvent.CASE_ACCEPTED, StatEvent.FIRST_ANSWER, StatEvent.CASE_CLOSED)
TIMED_BY = ("region", "kind")  # response times over the whole period are also given by these
KNOWN_ORDER = {"kind": ("report", "consultation", "link"), "age_group": ("9-12", "13-15", "16-18"),
               "outcome": ("advice", "referred", "escalated", "no_answer", "spam", "good", "ok", "bad")}

Key = tuple[StatEvent, str, str, str]  # measure, breakdown, value, column
# The funnel as the chart, the caption and the tables show it: (text key, measure, breakdown, value).
FUNNEL: tuple[tuple[str, StatEvent, str, str], ...] = (
    ("stats.measure.conversation_started", StatEvent.CONVERSATION_STARTED, ALL, ""),
    ("stats.measure.report_begun", StatEvent.REPORT_BEGUN, ALL, ""),
    ("stats.funnel_row.report", StatEvent.CASE_SUBMITTED, "kind", "report"),
    ("stats.funnel_row.consultation", StatEvent.CASE_SUBMITTED, "kind", "consultation"),
    ("stats.funnel_row.link", StatEvent.CASE_SUBMITTED, "kind", "link"),
    ("stats.measure.police_consent", StatEvent.POLICE_CONSENT, ALL, ""),
    ("stats.measure.case_accepted", StatEvent.CASE_ACCEPTED, ALL, ""),
    ("stats.measure.case_taken", StatEvent.CASE_TAKEN, ALL, ""),
    ("stats.measure.first_answer", StatEvent.FIRST_ANSWER, ALL, ""),
    ("stats.measure.escalated", StatEvent.ESCALATED, ALL, ""),
    ("stats.measure.case_closed", StatEvent.CASE_CLOSED, ALL, ""),
    ("stats.measure.spam", StatEvent.SPAM, ALL, ""),
)


@dataclass(frozen=True, slots=True)
class Sla:
    minutes: int
    urgent_minutes: int


@dataclass(frozen=True, slots=True)
class Cell:
    count: int | None  # None unless published as a number
    mark: Mark


@dataclass(frozen=True, slots=True)
class Timing:
    """Minutes from consent to acceptance, first answer or close, for one group of cases."""

    measure: StatEvent
    breakdown: str
    value: str
    column: str
    cases: int
    median: int
    p90: int
    within_sla: int | None  # percent of cases accepted within the SLA (CASE_ACCEPTED only)


@dataclass(frozen=True, slots=True)
class Figures:
    period: Period
    columns: tuple[Column, ...]  # weeks or months; empty when the period is one of them
    min_cell: int
    cells: dict[Key, Cell]
    rows: dict[tuple[StatEvent, str], tuple[str, ...]]  # the values of each measure's breakdowns
    timings: tuple[Timing, ...]

    @property
    def empty(self) -> bool:
        return not any(cell.count or cell.mark is not Mark.SHOWN for cell in self.cells.values())

    def cell(self, measure: StatEvent, breakdown: str = ALL, value: str = "", column: str = TOTAL) -> Cell:
        return self.cells.get((measure, breakdown, value, column), Cell(0, Mark.SHOWN))

    def breakdowns(self, measure: StatEvent) -> list[str]:
        return [breakdown for breakdown in BREAKDOWNS if (measure, breakdown) in self.rows]

    def timing(self, measure: StatEvent, breakdown: str = ALL, value: str = "", column: str = TOTAL) -> Timing | None:
        return next((t for t in self.timings if (t.measure, t.breakdown, t.value, t.column) == (measure, breakdown,
                                                                                                 value, column)), None)

    def shown(self, cell: Cell) -> str:
        """A count as every output prints it: the number, "<N", or "x"."""
        if cell.mark is Mark.SMALL:
            return f"<{self.min_cell}"
        return "x" if cell.mark is Mark.HIDDEN else str(cell.count)


def column_key(column: Column) -> str:
    return column.first.isoformat()


def figure(counts: Iterable[StatCount], period: Period, min_cell: int, harms: HarmMap, sla: Sla) -> Figures:
    """Aggregate the counters of `period` and suppress what could single a child out."""
    columns = period.columns()
    columns = columns if len(columns) > 1 else []
    tallies: dict[StatEvent, dict[Key, int]] = defaultdict(lambda: defaultdict(int))
    durations: dict[Key, list[tuple[int, bool, int]]] = defaultdict(list)
    for count in counts:
        column = period.column_of(count.day)
        if column is None:
            continue
        places = [TOTAL] + ([column_key(column)] if columns else [])
        for breakdown, value in _values(count, harms):
            for place in places:
                key = (count.event, breakdown, value, place)
                tallies[count.event][key] += count.count
                if count.minutes is not None and count.event in TIMED:
                    durations[key].append((count.minutes, count.urgent, count.count))
    cells: dict[Key, Cell] = {}
    rows: dict[tuple[StatEvent, str], tuple[str, ...]] = {}
    places = [TOTAL] + [column_key(column) for column in columns]
    for measure, tally in tallies.items():
        kept = {ALL: ("",)}
        for breakdown in BREAKDOWNS:
            seen = {value for (_, b, value, _) in tally if b == breakdown}
            if seen - {NOT_SAID}:
                kept[breakdown] = _ordered(breakdown, seen, harms)
        values = {(measure, b, v, p): tally.get((measure, b, v, p), 0) for b in kept for v in kept[b] for p in places}
        marks = suppress(values, _sums(measure, kept, places, harms), min_cell)
        for key, value in values.items():
            cells[key] = Cell(value if marks[key] is Mark.SHOWN else None, marks[key])
        rows.update({(measure, b): kept[b] for b in kept if b != ALL})
    timings = [_timing(key, durations[key], sla) for key in sorted(durations, key=str)
               if _timed_group(key, cells, min_cell)]
    return Figures(period, tuple(columns), min_cell, cells, rows, tuple(timings))


def _values(count: StatCount, harms: HarmMap) -> list[tuple[str, str]]:
    found = {name: getattr(count, name) for name in BREAKDOWNS if name != "chi"}
    found["chi"] = harms.chi(count.harm) if count.harm else None
    return [(ALL, "")] + [(name, str(value) if value else NOT_SAID) for name, value in found.items()]


def _ordered(breakdown: str, seen: set[str], harms: HarmMap) -> tuple[str, ...]:
    known = {"harm": tuple(harms.harms), "chi": harms.chi_categories}.get(breakdown, KNOWN_ORDER.get(breakdown, ()))
    rank = {value: index for index, value in enumerate(known)}
    return tuple(sorted(seen, key=lambda value: (value == NOT_SAID, rank.get(value, len(rank)), value)))


def _sums(measure: StatEvent, kept: dict[str, tuple[str, ...]], places: Sequence[str],
          harms: HarmMap) -> list[tuple[Key, list[Key]]]:
    """Every sum a reader can form: each breakdown adds up to the total, each row over the columns to
    its total for the period, and each CHI category to the kinds of harm it groups."""
    sums: list[tuple[Key, list[Key]]] = []
    for breakdown, values in kept.items():
        if breakdown != ALL:
            for place in places:
                sums.append(((measure, ALL, "", place), [(measure, breakdown, value, place) for value in values]))
        if len(places) > 1:
            for value in values:
                sums.append(((measure, breakdown, value, TOTAL), [(measure, breakdown, value, p) for p in places[1:]]))
    if "chi" in kept and "harm" in kept:
        for category in kept["chi"]:
            parts = [h for h in kept["harm"] if (harms.chi(h) if h != NOT_SAID else NOT_SAID) == category]
            for place in places:
                sums.append(((measure, "chi", category, place), [(measure, "harm", h, place) for h in parts]))
    return sums


def _timed_group(key: Key, cells: dict[Key, Cell], min_cell: int) -> bool:
    measure, breakdown, _, place = key
    if breakdown != ALL and (breakdown not in TIMED_BY or place != TOTAL):
        return False
    cell = cells.get(key)
    return cell is not None and cell.count is not None and cell.count >= min_cell


def _timing(key: Key, durations: list[tuple[int, bool, int]], sla: Sla) -> Timing:
    minutes = sorted(value for value, _, count in durations for _ in range(count))
    within = None
    if key[0] is StatEvent.CASE_ACCEPTED:
        met = sum(count for value, urgent, count in durations
                  if value <= (sla.urgent_minutes if urgent else sla.minutes))
        within = round(100 * met / len(minutes))
    return Timing(*key, cases=len(minutes), median=_rank(minutes, 0.5), p90=_rank(minutes, 0.9), within_sla=within)


def _rank(ordered: list[int], share: float) -> int:
    """The nearest-rank percentile: the smallest value with at least `share` of the values at or below it."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
