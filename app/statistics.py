"""`python run_bot.py stats --from 2026-11-01 --to 2026-11-30 --format csv|xlsx|json [--out FILE]`."""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot.settings import Settings, SettingsError, load_settings
from bot.statistics.figures import Figures
from bot.statistics.labels import Labels
from bot.statistics.period import Period, PeriodError, between, parse_day
from bot.statistics.report import figures_of, staff_labels
from bot.statistics.tables import to_csv, to_json, to_xlsx
from dialogs.content import ContentInvalid
from dialogs.engine import Engine
from dialogs.validate import load_content
from storage import Database, StatCount, utc_now

WRITERS: dict[str, Callable[[Figures, Labels], bytes]] = {"csv": to_csv, "xlsx": to_xlsx, "json": to_json}
BAD_INPUT, NO_DATA = 2, 1


class _NothingSealed:
    """Statistics hold nothing encrypted, so this command needs (and touches) no keys."""

    def seal(self, value: Any) -> bytes:
        raise RuntimeError("statistics are never sealed")

    def unseal(self, token: bytes | None) -> Any:
        raise RuntimeError("statistics are never sealed")


def main(argv: Sequence[str]) -> int:
    """Write the figures of a period as a table; every refusal is one sentence and a non-zero exit."""
    parser = argparse.ArgumentParser(prog="run_bot.py stats", description="Anonymous figures of a period, "
                                     "with small numbers suppressed (README: Statistics).")
    parser.add_argument("--from", dest="first", required=True, help="first day, YEAR-MONTH-DAY")
    parser.add_argument("--to", dest="last", required=True, help="last day, YEAR-MONTH-DAY")
    parser.add_argument("--format", default="csv", help="csv (the default), xlsx or json")
    parser.add_argument("--out", help="write to this file instead of standard output")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        engine = Engine(load_content(settings.content_dir), settings.country, settings.default_language)
    except (SettingsError, ContentInvalid) as error:
        print(error, file=sys.stderr)
        return BAD_INPUT
    labels = staff_labels(engine)
    writer = WRITERS.get(args.format.lower())
    if writer is None:
        return _refuse(labels.say("stats.error.format"), BAD_INPUT)
    try:
        period = between(parse_day(args.first), parse_day(args.last), utc_now().date())
    except PeriodError as error:
        return _refuse(labels.say("stats.error.dates" if error.key == "stats.error.period" else error.key), BAD_INPUT)
    figures = figures_of(asyncio.run(_counts(settings, period)), period, settings)
    if figures.empty:
        return _refuse(labels.say("stats.error.no_data"), NO_DATA)
    data = writer(figures, labels)
    if args.out:
        Path(args.out).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def _refuse(sentence: str, code: int) -> int:
    print(sentence, file=sys.stderr)
    return code


async def _counts(settings: Settings, period: Period) -> list[StatCount]:
    db = Database(settings.resolved_database_url, _NothingSealed())
    await db.start()
    try:
        async with db.transaction() as tx:
            return await tx.stats.between(period.first, period.last)
    finally:
        await db.close()
