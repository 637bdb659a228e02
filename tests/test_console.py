"""The console plays both sides: a child's whole report, and the operator chat handling it."""
from __future__ import annotations

import io
import re
from pathlib import Path

from app.build import build
from bot.settings import load_settings
from handlers.console import ConsoleTransport, run_console
from storage import Case, Outcome

# A whole report by the first button of every step: bullying, in the child's words, to a counsellor.
REPORT = ["1", "1", "They laugh at me", *["1"] * 10]


async def play(tmp_path: Path, lines: list[str]) -> tuple[str, list[Case], dict[str, str]]:
    """Type `lines` into the console; what it printed, the cases in progress, and a few texts."""
    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'console.db'}",
                             default_language="en")
    out = io.StringIO()
    transport = ConsoleTransport(out)
    app = await build(settings, console=transport)
    try:
        await run_console(app.db, app.conversations, app.casework, app.worker, transport,
                          io.StringIO("".join(f"{line}\n" for line in lines)))
        async with app.db.transaction() as tx:
            cases = await tx.cases.in_progress()
        texts = {key: app.engine.say("en", key) for key in ("operator.button.take", "rating.good")}
    finally:
        await app.close()
    return out.getvalue(), cases, texts


async def test_a_trainer_takes_answers_and_closes_a_case_in_the_console(tmp_path: Path) -> None:
    shown, in_progress, texts = await play(tmp_path, REPORT)
    number = re.search(r"number is (\d+)", shown).group(1)
    assert [case.number for case in in_progress] == [number]
    assert "would receive a new case topic" in shown and texts["operator.button.take"] in shown  # the card

    staff = [f"!take {number}", f"!answer {number} Block them and keep screenshots.", f"!close {number} advice",
             "!cases"]
    shown, in_progress, texts = await play(tmp_path, staff)
    assert "Block them and keep screenshots." in shown  # the child reads the answer
    assert texts["rating.good"] in shown  # and may rate the help
    assert not in_progress and "(no case in progress)" in shown


async def test_the_operator_chat_in_the_console_explains_itself(tmp_path: Path) -> None:
    shown, _, _ = await play(tmp_path, ["!take 123456", "!nonsense", "!close"])
    assert "(no case 123456)" in shown and shown.count("!answer NUMBER TEXT") == 2
    assert all(outcome.value in shown for outcome in Outcome)
