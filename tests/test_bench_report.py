"""`python -m bench` without bots: the flat-out phases of every bot taken in turn each round, the
ratios kept by round, their medians as verdicts, and the table (`measure` is replaced by figures)."""
from __future__ import annotations

import asyncio
import itertools

import bench.__main__ as bench_main
from bench.report import median_round, table, verdict

SPEEDS = {  # flat-out steps/s of each bot, round by round
    "oberih": [200.0, 150.0, 210.0],
    "sqlite": [400.0, 400.0, 400.0],
    "echo": [500.0, 600.0, 700.0],
}


def figures(steps_per_second: float) -> dict:
    return {"mode": "flat", "rate": None, "children": 200, "steps": int(5 * steps_per_second),
            "steps_per_second": steps_per_second, "reports_completed": 1, "bot_cpu_percent": 90.0,
            "fake_cpu_percent": 20.0, "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 4.0},
            "bot_cpu_ms_per_step": 2.0, "sql_per_step": {"statements": 8.0, "commits": 0.5},
            "child_messages_per_step": 1.1, "pydantic_generic_models_built_per_step": 0.0,
            "to_thread_calls_per_step": 0.07, "api_calls_per_step": {"sendMessage": 1.2},
            "bot_gc": {"longest_pause_ms": [1.0, 2.0, 3.0], "full_collections": 0}}


class Target:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def ask(self, cmd: str, **_: object) -> dict:
        self.asked.append(cmd)
        return {}


def run_load(names: list[str], monkeypatch) -> tuple[dict, list[str]]:
    order: list[str] = []
    taken = {name: iter(SPEEDS[name]) for name in names}

    async def measure(tg, target, children, phase):  # the runner's signature; tg is the bot's name here
        order.append(tg)
        return figures(next(taken[tg]))

    monkeypatch.setattr(bench_main, "measure", measure)
    args = bench_main.parse_args(["--flat", "--rounds", "3"])
    bots = [bench_main.Bot(name, name, Target(), None, settle=name != "echo") for name in names]
    result = {"machine": bench_main.machine(), "raised_limits": {}, "report_steps": 14, "spread": True,
              "content_dir": "content", "database": "postgresql", **{name: {} for name in names},
              "stage_seconds": {}, "wall_seconds": 1.0}
    asyncio.run(bench_main.load(args, bots, result))
    result["verdict"] = verdict(result)
    return result, order


def test_every_bot_takes_its_turn_and_each_ratio_is_the_median_of_its_rounds(monkeypatch):
    result, order = run_load(["oberih", "sqlite", "echo"], monkeypatch)
    assert order == ["oberih", "sqlite", "echo"] * 3
    assert result["ratios_by_round"] == {"oberih_over_echo_throughput": [0.4, 0.25, 0.3],
                                         "postgresql_over_sqlite_throughput": [0.5, 0.375, 0.525]}
    assert result["verdict"]["oberih_over_echo_throughput"]["value"] == 0.3
    over_sqlite = result["verdict"]["postgresql_over_sqlite_throughput"]
    assert (over_sqlite["value"], over_sqlite["target"], over_sqlite["met"]) == (0.5, ">= 0.5", True)
    # Each bot's flat-out line is the round of the median Oberih/echo ratio (the last), whichever
    # round has the median PostgreSQL/SQLite ratio (the first).
    assert [result[name]["flat_out"]["steps_per_second"] for name in SPEEDS] == [210.0, 400.0, 700.0]
    printed = table(result)
    for line in ("sqlite flat out", "Oberih on SQLite per step (flat out)", "Oberih / echo throughput",
                 "PostgreSQL / SQLite throughput (flat out): 0.5, the median of 3 rounds (0.5, 0.375, 0.525)"):
        assert line in printed


def test_without_echo_the_sqlite_comparison_picks_the_round(monkeypatch):
    result, order = run_load(["oberih", "sqlite"], monkeypatch)
    assert order == ["oberih", "sqlite"] * 3
    assert list(result["verdict"]) == ["postgresql_over_sqlite_throughput"]
    assert result["oberih"]["flat_out"]["steps_per_second"] == 200.0
    assert "Oberih / echo" not in table(result)


def test_the_median_round_counts_a_round_without_steps_as_zero_and_takes_the_lower_middle():
    assert median_round([0.5, None, 0.4]) == 2
    assert median_round([0.6, 0.3, 0.5, 0.4]) == 3
    assert all(p[median_round(list(p))] == 2.0 for p in itertools.permutations([1.0, 2.0, 3.0]))


def test_skip_sqlite_is_an_option():
    assert bench_main.parse_args(["--skip-sqlite"]).skip_sqlite
    assert not bench_main.parse_args([]).skip_sqlite
