"""The statistics message (a chart and a short text) for /stats and for the Monday post in General."""
from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.outbox import Outbox
from bot.settings import Settings
from bot.statistics.figures import FUNNEL, Figures, Sla, figure
from bot.statistics.harms import load_harms
from bot.statistics.labels import Labels
from bot.statistics.period import Period, last_week
from dialogs.engine import Engine
from storage import Database, StatCount, StatEvent

log = logging.getLogger(__name__)
# An outbox item for a staff chat's General topic: {caption, photo?} with the photo as base64 PNG.
# The Telegram sender posts it as a photo with that caption, or as a message without a photo.
CAPTION_LIMIT = 1024  # Telegram's, for a photo's caption
CAPTION_FUNNEL = ((0, 2, 3, 4), (6, 8, 9, 10))  # rows of FUNNEL on the caption's two lines


@dataclass(frozen=True, slots=True)
class Message:
    text: str
    chart: bytes | None  # None when there is nothing to show


def staff_labels(engine: Engine) -> Labels:
    """Labels in the staff language (DEFAULT_LANGUAGE)."""
    return Labels(lambda key, **slots: engine.say(engine.default_language, key, **slots))


def figures_of(counts: Sequence[StatCount], period: Period, settings: Settings) -> Figures:
    """The figures of `period`, with the deployment's STATS_MIN_CELL, SLA and kinds of harm."""
    sla = Sla(settings.sla_minutes, settings.urgent_sla_minutes)
    return figure(counts, period, settings.stats_min_cell, load_harms(settings.content_dir), sla)


def message(counts: Sequence[StatCount], period: Period, settings: Settings, engine: Engine) -> Message:
    """The chart and its caption; CPU work of a few hundred milliseconds: run it in a thread."""
    labels = staff_labels(engine)
    figures = figures_of(counts, period, settings)
    title = labels.say("stats.title", period=labels.span(period, with_year=True))
    if figures.empty:
        return Message(f"{title}\n{labels.say('stats.error.no_data')}", None)
    from bot.statistics.chart import render_chart  # matplotlib is loaded when a chart is first drawn, not at start

    return Message(caption(figures, labels, title), render_chart(figures, labels))


def caption(figures: Figures, labels: Labels, title: str) -> str:
    """A few lines for the chart: the funnel's main steps, response times, check-ins and ratings."""
    lines = [f"📊 {title}"]
    for rows in CAPTION_FUNNEL:
        parts = [(FUNNEL[row][0], figures.cell(*FUNNEL[row][1:])) for row in rows]
        lines.append(" · ".join(f"{labels.say(key)} {figures.shown(cell)}" for key, cell in parts))
    accepted = figures.timing(StatEvent.CASE_ACCEPTED)
    answered = figures.timing(StatEvent.FIRST_ANSWER)
    times = [labels.timing(timing) for timing in (accepted, answered) if timing is not None]
    if accepted is not None and accepted.within_sla is not None:
        times.append(labels.say("stats.time.within_sla", count=accepted.within_sla))
    lines.append("⏱ " + "; ".join(times) if times else labels.say("stats.no_times"))
    checkins = [StatEvent.CHECKIN_SENT, StatEvent.CHECKIN_ANSWERED]
    lines.append(" · ".join(f"{labels.measure(m)} {figures.shown(figures.cell(m))}" for m in checkins))
    ratings = figures.rows.get((StatEvent.RATED, "outcome"), ())
    if ratings:
        shown = [f"{labels.value(StatEvent.RATED, 'outcome', v)} {figures.shown(figures.cell(StatEvent.RATED, 'outcome', v))}"
                 for v in ratings]
        lines.append(f"{labels.measure(StatEvent.RATED)}: " + ", ".join(shown))
    lines.append(labels.say("stats.note", count=figures.min_cell))
    return "\n".join(lines)[:CAPTION_LIMIT]


async def post_last_week(db: Database, outbox: Outbox, engine: Engine, settings: Settings) -> bool:
    """Every Monday morning (the scheduler's job): last week's figures in the operator chat's General
    topic, once however many processes run the job. True if this process posted them."""
    period = last_week(db.now.date())
    async with db.transaction() as tx:
        counts = await tx.stats.between(period.first, period.last)
    made = await asyncio.to_thread(message, counts, period, settings, engine)
    payload: dict[str, Any] = {"caption": made.text}
    if made.chart is not None:
        payload["photo"] = base64.b64encode(made.chart).decode("ascii")
    async with db.transaction() as tx:
        if not await tx.stats.claim_post(f"week {period.key}", tx.now):
            return False
        await outbox.general_photo(tx, payload["caption"], payload.get("photo"))
    log.info("weekly statistics posted", extra={"days": (period.last - period.first).days + 1})
    return True
