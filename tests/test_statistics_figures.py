"""Figures of a period: what they count, and that no output lets anyone find a lone child."""
from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from openpyxl import load_workbook

from bot.settings import load_settings
from bot.statistics.chart import draw
from bot.statistics.figures import ALL, TOTAL, column_key
from bot.statistics.harms import load_harms
from bot.statistics.period import Period, PeriodError, between, parse_period
from bot.statistics.report import caption, figures_of, staff_labels
from bot.statistics.suppression import Mark
from bot.statistics.tables import to_csv, to_json, to_xlsx
from dialogs.engine import Engine
from dialogs.validate import load_content
from storage import StatCount, StatEvent
from tests.test_statistics_suppression import narrowed

CONTENT = Path(__file__).resolve().parent.parent / "content"
NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))
LONE = {"region": "vinnytsia", "age_group": "9-12", "harm": "grooming"}


@pytest.fixture(scope="module")
def labels():
    return staff_labels(Engine(load_content(CONTENT), "UA", "en"))


@pytest.fixture(scope="module")
def settings():
    return load_settings(_env_file=None, content_dir=CONTENT)


def counted(event: StatEvent, day: date, n: int = 1, minutes: int | None = None, **values: str | None) -> StatCount:
    fields = dict(region=None, channel="telegram", language="uk", age_group=None, kind="report", harm=None,
                  outcome=None) | values
    return StatCount(day=day, event=event, urgent=False, minutes=minutes, count=n, **fields)


def november() -> list[StatCount]:
    """48 children in Kyiv and Lviv, and one alone in their region, age group and kind of harm."""
    counts = []
    for index in range(48):
        day = date(2026, 11, 2 + (index % 4) * 7)
        case = {"region": ("kyiv", "lviv")[index % 2], "age_group": "13-15", "harm": ("bullying", "scam")[index % 3 == 0]}
        counts += [counted(StatEvent.CONVERSATION_STARTED, day, 2, kind=None),
                   counted(StatEvent.CASE_SUBMITTED, day, **case),
                   counted(StatEvent.CASE_ACCEPTED, day, minutes=10 + index, **case),
                   counted(StatEvent.CASE_CLOSED, day, minutes=600 + index, outcome="advice", **case)]
    day = date(2026, 11, 18)
    counts += [counted(StatEvent.CASE_SUBMITTED, day, **LONE), counted(StatEvent.POLICE_CONSENT, day, **LONE),
               counted(StatEvent.CASE_ACCEPTED, day, minutes=5, **LONE),
               counted(StatEvent.ESCALATED, day, **LONE),
               counted(StatEvent.CASE_CLOSED, day, minutes=900, outcome="escalated", **LONE)]
    return counts


def test_the_figures_count_what_happened(settings):
    figures = figures_of(november(), NOVEMBER, settings)
    assert figures.cell(StatEvent.CASE_SUBMITTED).count == 49
    assert figures.cell(StatEvent.CONVERSATION_STARTED).count == 96
    regions = [figures.cell(StatEvent.CASE_SUBMITTED, "region", r, TOTAL) for r in ("kyiv", "lviv", "vinnytsia")]
    # Kyiv 24 + Lviv 24 of 49 would give Vinnytsia's 1 away: one of them is hidden too.
    assert sorted(figures.shown(cell) for cell in regions) == ["24", "<5", "x"]
    chi = {c: figures.shown(figures.cell(StatEvent.CASE_SUBMITTED, "chi", c)) for c in ("bullying", "other")}
    assert sorted(chi.values()) in (["16", "x"], ["32", "x"]), chi  # scam counts as CHI "other"
    assert figures.cell(StatEvent.CASE_SUBMITTED, "harm", "grooming").mark is Mark.SMALL
    assert [column_key(c) for c in figures.columns] == ["2026-11-01", "2026-11-09", "2026-11-16", "2026-11-23"]
    accepted = figures.timing(StatEvent.CASE_ACCEPTED)
    assert (accepted.cases, accepted.median, accepted.p90, accepted.within_sla) == (49, 33, 53, 100)
    assert figures.timing(StatEvent.CASE_ACCEPTED, "region", "vinnytsia") is None, "no times for a group under 5"
    timed = [figures.timing(StatEvent.CASE_ACCEPTED, "region", r) for r in ("kyiv", "lviv")]
    assert [t.cases for t in timed if t] == [24], "times only where the group's count is published"


def test_no_output_lets_anyone_find_the_lone_child(settings, labels):
    figures = figures_of(november(), NOVEMBER, settings)
    published = {
        "csv": list(csv.DictReader(io.StringIO(to_csv(figures, labels).decode()))),
        "json": json.loads(to_json(figures, labels))["figures"],
        "xlsx": _sheet_rows(to_xlsx(figures, labels)),
    }
    harms = load_harms(CONTENT)
    for name, rows in published.items():
        counts = [row for row in rows if not str(row["figure"]).startswith("time_to_")]
        recovered = _recovered(counts, harms)
        assert recovered == [], f"{name}: {recovered[:3]} can be worked out"
        for row in counts:
            if row["value"] in LONE.values():
                assert str(row["count"]) in ("0", "<5", "x"), f"{name}: {row}"
    text = caption(figures, labels, "November")
    assert "Escalated to police <5" in text
    assert re.findall(r"(?<![\d<])[1-4](?!\d)", text) == [], "no small number in the caption"
    _chart_shows_only_published(figures, labels)


def _sheet_rows(data: bytes) -> list[dict]:
    sheet = load_workbook(io.BytesIO(data))["All figures"]
    head, *body = [list(row) for row in sheet.iter_rows(values_only=True)]
    return [dict(zip(head, row)) for row in body]


def _recovered(rows: list[dict], harms) -> list:
    """The reader's view: bounds from what is shown, and every sum that the rows imply."""
    known, cells = {}, defaultdict(dict)
    for row in rows:
        key = (row["figure"], row["breakdown"], row["value"] or "", row["from"], row["to"])
        shown = str(row["count"])
        known[key] = (0, 4) if shown == "<5" else (5, 10**6) if shown == "x" else (int(shown), int(shown))
        cells[(row["figure"], row["breakdown"])][key] = row
    sums = []
    whole = (NOVEMBER.first.isoformat(), NOVEMBER.last.isoformat())
    for (figure, breakdown), group in cells.items():
        spans = sorted({key[3:] for key in group})
        for span in spans:
            if breakdown != ALL:
                sums.append(((figure, ALL, "", *span), [k for k in group if k[3:] == span]))
        for value in {key[2] for key in group}:
            parts = [k for k in group if k[2] == value and k[3:] != whole]
            if parts:
                sums.append(((figure, breakdown, value, *whole), parts))
        if breakdown == "chi":
            for key in group:
                parts = [(figure, "harm", h, *key[3:]) for h in harms.harms if harms.chi(h) == key[2]]
                sums.append((key, [p for p in parts if p in known]))
    found = narrowed(sums, known)
    return [key for key, (low, high) in found.items() if low == high and known[key][0] != known[key][1]]


def _chart_shows_only_published(figures, labels) -> None:
    chart = draw(figures, labels)
    shown = {cell.count for cell in figures.cells.values() if cell.mark is Mark.SHOWN}
    for axes in chart.axes[:1]:  # the funnel: bar lengths are counts
        for bar in axes.patches:
            assert isinstance(bar, Rectangle) and bar.get_width() in shown
    words = [text.get_text() for text in chart.findobj(Text)]
    assert [w for w in words if w in ("1", "2", "3", "4")] == [], "a small number drawn"
    assert "<5" in words


def test_periods_from_words_and_dates():
    today = date(2026, 12, 4)  # a Friday
    assert parse_period(None, today) == Period(date(2026, 11, 23), date(2026, 11, 29))
    assert parse_period("month", today) == NOVEMBER
    assert parse_period("2026-11", today) == NOVEMBER
    assert parse_period("2026-12", today) == Period(date(2026, 12, 1), today), "a month under way ends today"
    assert parse_period("2026-11-03..2026-11-05", today) == Period(date(2026, 11, 3), date(2026, 11, 5))
    for text, key in (("2026-11-30..2026-11-01", "stats.error.backwards"), ("2027-01", "stats.error.future"),
                      ("yesterday", "stats.error.period"), ("2026-13", "stats.error.period")):
        with pytest.raises(PeriodError) as refused:
            parse_period(text, today)
        assert refused.value.key == key
    assert Period(date(2026, 1, 1), date(2026, 6, 30)).step == "month"
    assert len(Period(date(2026, 1, 1), date(2026, 6, 30)).columns()) == 6
    assert between(date(2026, 11, 1), date(2026, 11, 1), today).columns() == [NOVEMBER.columns()[0].__class__(
        date(2026, 11, 1), date(2026, 11, 1))]


def test_a_month_of_nothing_is_empty(settings):
    assert figures_of([], NOVEMBER, settings).empty
    assert not figures_of(november(), NOVEMBER, settings).empty
    assert figures_of(november(), NOVEMBER, settings).cell(StatEvent.SPAM, ALL, "", TOTAL).count == 0
