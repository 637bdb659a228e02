"""The figures as tables for a donor report: CSV, XLSX and JSON, with the same suppression as the chart."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from bot.statistics.figures import ALL, FUNNEL, TOTAL, Cell, Figures, column_key
from bot.statistics.labels import Labels
from bot.statistics.suppression import Mark
from storage import StatEvent

FIELDS = ("figure", "figure_label", "breakdown", "breakdown_label", "value", "value_label", "from", "to", "count",
          "median_minutes", "p90_minutes", "within_sla_percent")
SHEET_NAME = 31  # Excel's limit
NOT_IN_SHEET_NAMES = str.maketrans({character: " " for character in "[]:*?/\\"})


def rows(figures: Figures, labels: Labels) -> Iterator[dict[str, Any]]:
    """Every published figure, one per line: counts (a number, "<N" or "x"), then response times."""
    spans = {TOTAL: figures.period.whole} | {column_key(column): column for column in figures.columns}
    for measure in StatEvent:
        for breakdown in [ALL, *figures.breakdowns(measure)]:
            for value in figures.rows.get((measure, breakdown), ("",)):
                for place, span in spans.items():
                    cell = figures.cell(measure, breakdown, value, place)
                    yield _row(figures, labels, measure, breakdown, value, span) | {"count": _value(figures, cell)}
    for timing in figures.timings:
        span = spans[timing.column]
        yield _row(figures, labels, timing.measure, timing.breakdown, timing.value, span) | {
            "figure": f"time_to_{timing.measure.value}", "figure_label": labels.say(f"stats.time.{timing.measure.value}"),
            "count": timing.cases, "median_minutes": timing.median, "p90_minutes": timing.p90,
            "within_sla_percent": timing.within_sla,
        }


def _row(figures: Figures, labels: Labels, measure: StatEvent, breakdown: str, value: str, span: Any) -> dict[str, Any]:
    return {
        "figure": measure.value, "figure_label": labels.measure(measure), "breakdown": breakdown,
        "breakdown_label": labels.breakdown(breakdown), "value": value,
        "value_label": labels.value(measure, breakdown, value), "from": span.first.isoformat(),
        "to": span.last.isoformat(),
    }


def _value(figures: Figures, cell: Cell) -> int | str:
    return cell.count if cell.mark is Mark.SHOWN and cell.count is not None else figures.shown(cell)


def to_csv(figures: Figures, labels: Labels) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(figures, labels))
    return text.getvalue().encode("utf-8")


def to_json(figures: Figures, labels: Labels) -> bytes:
    document = {
        "from": figures.period.first.isoformat(), "to": figures.period.last.isoformat(),
        "step": figures.period.step.value, "min_cell": figures.min_cell,
        "note": labels.say("stats.note", count=figures.min_cell),
        "figures": [{name: value for name, value in row.items() if value is not None} for row in rows(figures, labels)],
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def to_xlsx(figures: Figures, labels: Labels) -> bytes:
    """A funnel sheet, a sheet per breakdown of the cases sent, response times, and all figures."""
    book = Workbook()
    places = [column_key(column) for column in figures.columns] + [TOTAL]
    heads = [labels.column(place, figures) for place in places]
    funnel = book.active
    funnel.title = _sheet_name(labels.say("stats.sheet.funnel"))
    _table(funnel, [labels.say("stats.funnel")] + heads,
           [[labels.say(key)] + [_value(figures, figures.cell(m, b, v, p)) for p in places] for key, m, b, v in FUNNEL])
    funnel.append([])
    funnel.append([labels.say("stats.note", count=figures.min_cell)])
    cases = StatEvent.CASE_SUBMITTED
    for breakdown in figures.breakdowns(cases):
        sheet = book.create_sheet(_sheet_name(f"{labels.measure(cases)} · {labels.breakdown(breakdown)}"))
        _table(sheet, [labels.breakdown(breakdown)] + heads,
               [[labels.value(cases, breakdown, value)] + [_value(figures, figures.cell(cases, breakdown, value, p))
                                                           for p in places] for value in figures.rows[(cases, breakdown)]])
    every = list(rows(figures, labels))
    times = book.create_sheet(_sheet_name(labels.say("stats.sheet.times")))
    timed = [row for row in every if row.get("median_minutes") is not None]
    _table(times, [labels.say(f"stats.column.{name}") for name in ("figure", "value", "from", "to", "count",
                                                                   "median_minutes", "p90_minutes", "within_sla_percent")],
           [[row["figure_label"], row["value_label"], row["from"], row["to"], row["count"], row["median_minutes"],
             row["p90_minutes"], row["within_sla_percent"]] for row in timed])
    _table(book.create_sheet(_sheet_name(labels.say("stats.sheet.all"))), list(FIELDS),
           [[row.get(name) for name in FIELDS] for row in every if row.get("median_minutes") is None])
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()


def _table(sheet: Any, head: list[Any], body: list[list[Any]]) -> None:
    sheet.append(head)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for line in body:
        sheet.append(line)
    sheet.column_dimensions["A"].width = max([len(str(line[0])) for line in body] + [len(str(head[0]))]) + 2


def _sheet_name(name: str) -> str:
    return name.translate(NOT_IN_SHEET_NAMES)[:SHEET_NAME]
