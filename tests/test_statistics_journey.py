"""Statistics as people meet them: children report, staff work, coordinators ask for the figures."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.statistics.harms import check_statistics_content
from bot.statistics.report import post_last_week
from storage import StatEvent
from tests.fakes.telegram_api import FakeTelegram
from tests.support import ADMIN, OPERATOR, Child, Staff, bot_settings, card_of, report, running_bot, settled

ROOT = Path(__file__).resolve().parent.parent
COORDINATOR, COUNSELLOR = 700010, 700011


class Clock:
    """Real time from a moment the test chooses and moves."""

    def __init__(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def move_to(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)


def a_wednesday_weeks_ago() -> date:
    today = datetime.now(UTC).date()
    return today - timedelta(days=14 + (today.weekday() - 2) % 7)


def replies(tg: FakeTelegram) -> list:
    """The bot's messages in the operator chat's General topic, newest last."""
    return [m for m in tg.sent_to(OPERATOR) if m.thread_id is None]


async def test_coordinators_get_the_figures_and_no_child_can_be_singled_out(tmp_path, tg):
    day = a_wednesday_weeks_ago()
    clock = Clock(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10))
    settings = bot_settings(tmp_path, tg)
    async with running_bot(settings, clock=clock) as app:
        admin = Staff(app, tg, ADMIN, "Ada")
        coordinator = Staff(app, tg, COORDINATOR, "Coco")
        counsellor = Staff(app, tg, COUNSELLOR, "Olena")
        async with app.db.transaction() as tx:
            await tx.staff.grant(COORDINATOR, "coordinator", "Coco", ADMIN)
            await tx.staff.grant(COUNSELLOR, "counsellor", "Olena", ADMIN)
        for number in range(5):
            await report(Child(app, tg, 810 + number))
        await report(Child(app, tg, 820), category="category.grooming", consent="consent.police")
        lone = card_of(tg)
        await coordinator.press(lone, "operator.button.accept")
        async with app.db.transaction() as tx:
            assert (await tx.cases.by_operator_topic(tg.topics(OPERATOR)[-1].thread_id)).status == "new", \
                "a coordinator never acts on a case"
        await admin.press(lone, "operator.button.take")
        await admin.write("We are here for you", thread_id=tg.topics(OPERATOR)[-1].thread_id)
        await admin.press(lone, "operator.button.close")
        await admin.press(lone, "operator.outcome.advice")

        await coordinator.write(f"/stats {day}..{day}")
        chart = replies(tg)[-1]
        assert chart.method == "sendPhoto", chart.method
        caption = chart.data["caption"]
        assert "Reports sent 6" in caption and "Accepted <5" in caption and "Closed <5" in caption
        assert re.findall(r"(?<![\d<])[1-4](?!\d)", caption) == [], caption

        for who, text, sentence in (
            (counsellor, "/stats", "stats.error.refused"), (coordinator, "/stats 2999-01", "stats.error.future"),
            (admin, "/stats soon", "stats.error.period"), (admin, "/stats 2026-11-30..2026-11-01", "stats.error.backwards"),
            (admin, "/stats 2001-01", "stats.error.no_data"),
        ):
            await who.write(text)
            assert replies(tg)[-1].text == app.engine.say("en", sentence), text
        await coordinator.write("/stats", thread_id=tg.topics(OPERATOR)[-1].thread_id)
        assert tg.sent_to(OPERATOR)[-1].text == app.engine.say("en", "stats.error.topic")

        async with app.db.transaction() as tx:
            counts = await tx.stats.between(day, day)
        total = {event: sum(c.count for c in counts if c.event is event) for event in StatEvent}
        assert (total[StatEvent.CASE_SUBMITTED], total[StatEvent.POLICE_CONSENT]) == (6, 1)
        assert (total[StatEvent.CASE_ACCEPTED], total[StatEvent.FIRST_ANSWER], total[StatEvent.CASE_CLOSED]) == (1, 1, 1)
        assert total[StatEvent.CONVERSATION_STARTED] == 6 and total[StatEvent.REPORT_BEGUN] == 6
        assert {c.harm for c in counts if c.event is StatEvent.CASE_SUBMITTED} == {"bullying", "grooming"}

        clock.move_to(datetime.combine(day + timedelta(days=5), datetime.min.time(), UTC) + timedelta(hours=7))
        assert await post_last_week(app.db, app.outbox, app.engine, app.settings)
        assert not await post_last_week(app.db, app.outbox, app.engine, app.settings), "posted once"
        await settled(app, tg)
        weekly = replies(tg)[-1]
        assert weekly.method == "sendPhoto" and "Reports sent 6" in weekly.data["caption"]

    env = {**os.environ, "DATABASE_URL": settings.resolved_database_url, "DATA_DIR": str(tmp_path),
           "DEFAULT_LANGUAGE": "en", "TELEGRAM_BOT_TOKEN": "", "VIBER_AUTH_TOKEN": ""}
    env = {name: value for name, value in env.items() if value}

    def stats(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "stats", *args], env=env, cwd=tmp_path,
                              capture_output=True, check=False, timeout=120)

    table = stats("--from", str(day), "--to", str(day))
    assert table.returncode == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(table.stdout.decode())))
    count = {(r["figure"], r["breakdown"], r["value"]): r["count"] for r in rows if r["from"] == r["to"] == str(day)}
    assert count[("case_submitted", "all", "")] == "6"
    assert count[("case_submitted", "harm", "grooming")] == "<5"
    assert count[("case_submitted", "harm", "bullying")] in ("5", "x")
    document = json.loads(stats("--from", str(day), "--to", str(day), "--format", "json").stdout)
    assert document["min_cell"] == 5 and document["figures"]
    assert stats("--from", str(day), "--to", str(day), "--format", "xlsx", "--out", "f.xlsx").returncode == 0
    assert (tmp_path / "f.xlsx").read_bytes()[:2] == b"PK"
    for args, sentence in ((("--format", "pdf"), "Unknown format"), (("--to", "2999-01-02"), "has not begun")):
        first = "2999-01-01" if "--to" in args else str(day)
        refused = stats("--from", first, *(("--to", str(day)) if "--to" not in args else ()), *args)
        assert refused.returncode != 0 and sentence in refused.stderr.decode(), refused.stderr


def test_check_content_names_the_file_and_line_of_a_wrong_mapping(tmp_path):
    content = tmp_path / "content"
    subprocess.run(["cp", "-r", str(ROOT / "content"), str(content)], check=True)
    text = (content / "statistics.yaml").read_text()
    text = text.replace("  hate: discrimination\n", "").replace("  scam: other\n", "  scam: fraud\n")
    (content / "statistics.yaml").write_text(text)
    problems = [str(p) for p in check_statistics_content(content)]
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("  scam:"))
    assert f"content/statistics.yaml:{line}: kind of harm 'scam' maps to 'fraud'" in problems[0]
    assert any("'hate'" in p and "not under 'harms'" in p for p in problems)
    assert check_statistics_content(ROOT / "content") == []


@pytest.mark.parametrize("value", ["2", "-1"])
def test_a_min_cell_under_three_is_refused(value, monkeypatch):
    from bot.settings import SettingsError, load_settings

    monkeypatch.setenv("STATS_MIN_CELL", value)
    with pytest.raises(SettingsError, match="STATS_MIN_CELL"):
        load_settings(_env_file=None)
