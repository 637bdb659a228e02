"""The chart of a period as a PNG, for a phone screen and for a printed report.

Three panels, one message each: the funnel, kinds of harm week by week (a grid of numbers: small
counts cannot be drawn as bars without showing their size), and response times. It is drawn only
from the published figures, so a suppressed count never becomes a bar length or a label.
"""
from __future__ import annotations

import io
import textwrap

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from bot.statistics.figures import FUNNEL, NOT_SAID, TIMED, TOTAL, Figures, column_key
from bot.statistics.labels import Labels
from bot.statistics.period import Step
from bot.statistics.suppression import Mark
from storage import StatEvent

INK, MUTED, ACCENT, LIGHT, EMPTY = "#1f2933", "#616e7c", "#1f6f8b", "#a9d3e0", "#eef2f5"
WIDTH, DPI = 7.2, 150  # 1080 pixels wide: sharp on a phone, fits an A4 page
LABEL_WIDTH = 26  # characters of a row's name that fit left of the panels
MINUTE_TICKS = (10, 60, 6 * 60, 24 * 60, 7 * 24 * 60, 30 * 24 * 60)


def render_chart(figures: Figures, labels: Labels) -> bytes:
    """The PNG bytes of the chart."""
    buffer = io.BytesIO()
    draw(figures, labels).savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def draw(figures: Figures, labels: Labels) -> Figure:
    """The chart as a matplotlib figure (Agg: no display needed)."""
    harms = [value for value in figures.rows.get((StatEvent.CASE_SUBMITTED, "harm"), ()) if value != NOT_SAID]
    # Panel heights in inches: a row of text needs about 0.4 inch to stay readable on a phone.
    heights = [len(FUNNEL) * 0.36, max(1, len(harms)) * 0.4 + 0.3, len(TIMED) * 0.62 + 0.2]
    gaps, top, bottom = 0.95, 1.0, 1.05
    height = sum(heights) + gaps * 2 + top + bottom
    figure = Figure(figsize=(WIDTH, height), dpi=DPI, facecolor="white")
    grid = figure.add_gridspec(3, 1, height_ratios=heights, hspace=gaps * 3 / sum(heights), left=0.36, right=0.95,
                               top=1 - top / height, bottom=bottom / height)
    figure.text(0.03, 1 - 0.3 / height, labels.say("stats.title", period=labels.span(figures.period, with_year=True)),
                ha="left", va="top", fontsize=15, fontweight="bold", color=INK)
    _funnel(figure.add_subplot(grid[0]), figures, labels)
    _trend(figure.add_subplot(grid[1]), figures, labels, harms, heights[1])
    _times(figure.add_subplot(grid[2]), figures, labels)
    figure.text(0.03, 0.2 / height, labels.say("stats.note", count=figures.min_cell), fontsize=8.5, color=MUTED,
                wrap=True)
    return figure


def _title(axes: Axes, text: str) -> None:
    axes.text(-0.52, 1.0, text, transform=axes.transAxes, ha="left", va="bottom", fontsize=12.5,
              fontweight="bold", color=INK)


def _bare(axes: Axes) -> None:
    for side in ("top", "right", "bottom", "left"):
        axes.spines[side].set_visible(False)
    axes.tick_params(length=0, labelsize=10.5, colors=INK)
    axes.set_xticks([])


def _funnel(axes: Axes, figures: Figures, labels: Labels) -> None:
    _title(axes, labels.say("stats.funnel"))
    _bare(axes)
    cells = [figures.cell(measure, breakdown, value) for _, measure, breakdown, value in FUNNEL]
    widest = max([cell.count or 0 for cell in cells] + [1])
    for row, cell in enumerate(cells):
        shown = cell.mark is Mark.SHOWN
        axes.barh(row, cell.count if shown else 0, height=0.7, color=ACCENT)
        axes.text((cell.count or 0) if shown else 0, row, "  " + figures.shown(cell), va="center",
                  fontsize=10.5, color=INK if shown else MUTED)
    axes.set_yticks(range(len(FUNNEL)), [_wrap(labels.say(key)) for key, *_ in FUNNEL])
    axes.set_xlim(0, widest * 1.18)
    axes.set_ylim(len(FUNNEL) - 0.5, -0.5)


def _trend(axes: Axes, figures: Figures, labels: Labels, harms: list[str], inches: float) -> None:
    monthly = figures.period.step is Step.MONTH
    axes.text(-0.52, 1.0 + 0.32 / inches, labels.say("stats.trend_month" if monthly else "stats.trend_week"),
              transform=axes.transAxes, ha="left", va="bottom", fontsize=12.5, fontweight="bold", color=INK)
    _bare(axes)
    places = [column_key(column) for column in figures.columns] + [TOTAL]
    names = [labels.span(column) for column in figures.columns] + [labels.say("stats.total")]
    measure = StatEvent.CASE_SUBMITTED
    peak = max([figures.cell(measure, "harm", h, p).count or 0 for h in harms for p in places[:-1]] + [1])
    for row, harm in enumerate(harms):
        for column, place in enumerate(places):
            cell = figures.cell(measure, "harm", harm, place)
            shade = EMPTY if cell.count is None or place == TOTAL else _blend(cell.count / peak)
            axes.add_patch(_box(column, row, shade))
            strong = cell.count is not None and place != TOTAL and cell.count / peak > 0.6
            axes.text(column + 0.5, row + 0.5, figures.shown(cell), ha="center", va="center", fontsize=10.5,
                      color="white" if strong else INK if cell.count is not None else MUTED,
                      fontweight="bold" if place == TOTAL else "normal")
    axes.set_xlim(0, len(places))
    axes.set_ylim(max(1, len(harms)), 0)
    axes.set_yticks([row + 0.5 for row in range(len(harms))], [_wrap(labels.value(measure, "harm", h)) for h in harms])
    axes.xaxis.tick_top()
    axes.set_xticks([column + 0.5 for column in range(len(places))], names, fontsize=9.5, color=MUTED)


def _wrap(label: str) -> str:
    """A long label on two lines rather than cut at the chart's edge."""
    return "\n".join(textwrap.wrap(label, LABEL_WIDTH)) if len(label) > LABEL_WIDTH else label


def _box(column: int, row: int, color: str) -> Rectangle:
    return Rectangle((column + 0.04, row + 0.06), 0.92, 0.88, facecolor=color, edgecolor="none")


def _blend(share: float) -> str:
    """From the lightest to the accent colour as the count grows."""
    low, high = (0xE3, 0xF1, 0xF5), (0x1F, 0x6F, 0x8B)
    return "#" + "".join(f"{round(a + (b - a) * min(1.0, share)):02x}" for a, b in zip(low, high))


def _times(axes: Axes, figures: Figures, labels: Labels) -> None:
    _title(axes, labels.say("stats.times"))
    _bare(axes)
    axes.set_xscale("log")
    axes.set_xlim(5, MINUTE_TICKS[-1] * 1.5)
    for row, measure in enumerate(TIMED):
        timing = figures.timing(measure)
        if timing is None:
            axes.text(5, row, labels.say("stats.no_times"), va="center", fontsize=10, color=MUTED)
            continue
        axes.barh(row + 0.12, max(timing.p90, 5.5) - 5, left=5, height=0.5, color=LIGHT)
        axes.barh(row + 0.12, max(timing.median, 5.5) - 5, left=5, height=0.5, color=ACCENT)
        detail = f"{labels.duration(timing.median)} · {labels.duration(timing.p90)}"
        axes.text(5, row - 0.2, detail, va="bottom", fontsize=10, color=INK)
    axes.set_yticks([row + 0.12 for row in range(len(TIMED))], [labels.say(f"stats.time.{m.value}") for m in TIMED])
    axes.set_ylim(len(TIMED) - 0.35, -0.65)
    axes.set_xticks(MINUTE_TICKS, [labels.scale(t) for t in MINUTE_TICKS], fontsize=8.5, color=MUTED)
    axes.minorticks_off()
    handles = [Patch(color=ACCENT, label=labels.say("stats.time.median")),
               Patch(color=LIGHT, label=labels.say("stats.time.p90"))]
    accepted = figures.timing(StatEvent.CASE_ACCEPTED)
    if accepted is not None and accepted.within_sla is not None:
        handles.append(Patch(color="none", label=labels.say("stats.time.within_sla", count=accepted.within_sla)))
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(-0.52, -0.22), ncols=3, frameon=False,
                fontsize=9, handlelength=1.0, handletextpad=0.4, columnspacing=1.2, labelcolor=MUTED)
