"""`python -m bench`: Oberih under load from many simulated children, next to a bare aiogram echo bot.

See bench/README.md for what each figure means and how to reproduce it.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import chaos
from bench.children import Children
from bench.database import is_postgresql, scratch_database
from bench.report import TARGETS, comparisons, median_round, ratio, table, verdict
from bench.runner import Phase, bot_under_test, measure, warm_up
from bench.script import MID_REPORT, echo_script, report_script
from bench.target import RAISED_LIMITS

IDLE_CONCURRENCY = 20  # conversations being opened at once for the memory figure


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Simulated children through whole reports against the local fake Bot API server "
                    "(127.0.0.1 only): Oberih, then a bare aiogram echo bot, in one run.")
    parser.add_argument("--children", type=int, default=200, help="simulated children at once (default 200)")
    parser.add_argument("--rate", type=float, help="paced mode only: inject R updates a second "
                        "(default: a flat-out phase and a paced phase at 200/s)")
    parser.add_argument("--flat", action="store_true", help="flat-out mode only (with --rate: both)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, default=5.0, help="measured seconds per phase (default 5)")
    length.add_argument("--steps", type=int, help="measure this many steps per phase instead of seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each phase (default 1)")
    parser.add_argument("--idle", type=int, default=100,
                        help="conversations opened mid-report for the memory figure (default 100)")
    parser.add_argument("--database", help="SQLAlchemy URL for Oberih (default: a temporary SQLite file); "
                        "a PostgreSQL URL (postgresql+asyncpg://…) is allowed, and then a second Oberih on a "
                        "temporary SQLite file (\"sqlite\") is measured in the same rounds for comparison")
    parser.add_argument("--from-start", dest="spread", action="store_false",
                        help="every child starts at /start, so the first steps weigh more and the mix drifts "
                             "from phase to phase (default: the children are first spread over the report, "
                             "child i walking to step i mod 14, so that every phase measures the mix of whole "
                             "reports; that costs about 6.5 steps a child before measuring)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--profile", metavar="FILE", help="profile Oberih's event-loop thread during the "
                        "first phase: FILE.txt or FILE.html with pyinstrument (not in requirements: pip install "
                        "pyinstrument), any other name: cProfile pstats")
    parser.add_argument("--rounds", type=int, default=3,
                        help="flat-out phases per bot, Oberih's and the echo bot's taken in turn; the ratio is "
                             "the median of each round's (default 3: the speed of a shared machine drifts, and "
                             "so both bots are measured under the same drift)")
    parser.add_argument("--skip-echo", action="store_true", help="do not run the echo bot")
    parser.add_argument("--skip-sqlite", action="store_true",
                        help="with a PostgreSQL --database: do not run the second Oberih on SQLite")
    parser.add_argument("--skip-memory", action="store_true", help="do not measure idle-conversation memory")
    chaos.add_arguments(parser)
    parser.add_argument("--scale", action="store_true",
                        help="steps/s of one process, then of --processes, in webhook mode on PostgreSQL "
                             "(with --children, --seconds, --warmup; bench/scale.py)")
    args = parser.parse_args(argv)
    if args.children < 1 or (args.rate is not None and args.rate <= 0) or args.idle < 1 or args.rounds < 1:
        parser.error("--children, --rate, --idle and --rounds must be positive")
    return args


def phases(args: argparse.Namespace) -> list[Phase]:
    flat = args.flat or args.rate is None
    paced = args.rate is not None or not args.flat
    seconds = None if args.steps else args.seconds
    out = []
    if flat:
        out.append(Phase("flat_out", "flat", args.children, None, args.warmup, seconds, args.steps))
    if paced:
        rate = args.rate or TARGETS["paced_rate"]
        out.append(Phase(f"paced_{rate:g}", "paced", args.children, rate, args.warmup, seconds, args.steps))
    return out


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu_cores": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform()}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bot.settings import Settings
    from dialogs.engine import Engine
    from dialogs.validate import load_content

    content_dir = Settings(_env_file=None).content_dir  # CONTENT_DIR is honoured, as by the bot
    script = report_script(Engine(load_content(content_dir), "UA", "en"))
    # The measuring side must not pause: what is loaded now is never scanned again, and the
    # collector is off while a phase is measured (runner.measure).
    gc.collect()
    gc.freeze()
    users = itertools.count(1_000_000_000, 10_000_000)  # a fresh range of Telegram user ids per phase
    started = time.perf_counter()
    with_sqlite = is_postgresql(args.database) and not args.skip_sqlite
    result: dict[str, Any] = {
        "machine": machine(),
        "raised_limits": {name.upper(): value for name, value in RAISED_LIMITS.items()},
        "report_steps": len(script), "spread": args.spread, "content_dir": str(content_dir),
        "oberih": {}, **({"sqlite": {}} if with_sqlite else {}), "echo": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="oberih-bench-"))
    stages = result["stage_seconds"] = {}
    mark = [time.perf_counter()]

    def stage(name: str) -> None:
        now = time.perf_counter()
        stages[name] = round(now - mark[0], 1)
        mark[0] = now

    async def start(stack: contextlib.AsyncExitStack, name: str, kind: str, steps: list,
                    database: str | None = None, memory: bool = False) -> Bot:
        """A bot started (until `stack` closes), warmed up and its children spread."""
        tg, target = await stack.enter_async_context(bot_under_test(kind, tmp / name, database))
        stage(f"{name}_start")
        await warm_up(tg, steps, next(users), reports=3)
        stage(f"{name}_warm_up")
        if memory:  # first, while tracemalloc has little to trace; it stops after
            result[name]["idle"] = await idle_memory(args, tg, target, steps, next(users))
            stage("memory")
        bot = Bot(name, tg, target, await spread(args, tg, steps, next(users)), settle=kind == "oberih")
        stage(f"{name}_spread")
        return bot

    bots: list[Bot] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            database, result["database"] = await stack.enter_async_context(scratch_database(args.database))
            bots.append(await start(stack, "oberih", "oberih", script, database, memory=not args.skip_memory))
            if with_sqlite:
                bots.append(await start(stack, "sqlite", "oberih", script))
            if not args.skip_echo:
                bots.append(await start(stack, "echo", "echo", echo_script(len(script))))
            await load(args, bots, result)
            stage("phases")
            usage = await bots[0].target.ask("usage")
        stage("stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["oberih"]["internals"] = {k: v for k, v in usage.items() if k in ("rate_buckets_per_chat", "flood_windows")}
    result["oberih"]["peak_rss_kb"] = usage["maxrss_kb"]
    for bot in bots[1:]:
        result[bot.name]["peak_rss_kb"] = (bot.target.final or {}).get("maxrss_kb")
    result["verdict"] = verdict(result)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    return result


@dataclass
class Bot:
    """A bot under test with its fake server and its population of simulated children."""

    name: str
    tg: Any
    target: Any
    children: Children
    settle: bool = False  # wait after each phase until its inbox and outbox are empty


async def spread(args: argparse.Namespace, tg: Any, script: list, first_user_id: int) -> Children:
    """A population of children spread over the report (or all at its start), paused."""
    children = Children(tg, script, first_user_id)
    missing = await children.spread(args.children, timeout=300, positions=None if args.spread else 1)
    if missing:
        raise RuntimeError(f"{missing} of {args.children} children did not reach their starting step in 300 s")
    children.release()
    return children


async def load(args: argparse.Namespace, bots: list[Bot], result: dict[str, Any]) -> None:
    """The phases, each bot's in turn; the flat-out phase `--rounds` times. Each round's ratio of
    every comparison whose two bots run (bench/report.py) is kept. A bot's `flat_out` is one round
    for all bots: the one with the median ratio of the first comparison (Oberih/echo, else
    PostgreSQL/SQLite), or with Oberih's median throughput if there is none; of an even number of
    rounds, the lower of the middle two."""
    profile = args.profile
    compared = comparisons([bot.name for bot in bots])
    for phase in phases(args):
        rounds = []
        for _ in range(args.rounds if phase.mode == "flat" else 1):
            measured = {}
            for bot in bots:
                profiling = profile and bot.name == "oberih"
                if profiling:
                    await bot.target.ask("profile_on", path=str(Path(profile).resolve()))
                    profile = None  # the first phase only
                measured[bot.name] = await measure(bot.tg, bot.target, bot.children, phase)
                if profiling:
                    await bot.target.ask("profile_off")
                if bot.settle:
                    await bot.target.ask("settle")
            rounds.append(measured)
        if phase.mode == "flat":
            result["ratios_by_round"] = {c.key: [ratio(measured[c.over], measured[c.under]) for measured in rounds]
                                         for c in compared}
        chosen = (result["ratios_by_round"][compared[0].key] if compared and phase.mode == "flat"
                  else [measured["oberih"]["steps_per_second"] for measured in rounds])
        middle = rounds[median_round(chosen)]
        for bot in bots:
            result[bot.name][phase.name] = middle[bot.name]


async def idle_memory(args: argparse.Namespace, tg: Any, target: Any, script: list,
                      first_user_id: int) -> dict[str, Any]:
    """Memory per idle conversation, in the Oberih process right after its warm-up: tracemalloc
    starts, a few conversations warm the traced state, then `--idle` conversations are opened
    mid-report; once everything is stored and sent, the net growth of live Python memory (after
    gc) is divided by their number, and tracemalloc stops. Memory allocated before tracing started
    and freed meanwhile is not subtracted, so the figure is an upper bound."""
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def took(name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - clock[0], 1)
        clock[0] = now

    await target.ask("trace")
    children = Children(tg, script, first_user_id)
    # The same batch sizes in the warm-up and in the measurement: SQL text cached per statement shape
    # (bounded caches) is then already there when the measurement starts.
    concurrency = min(args.children, IDLE_CONCURRENCY)
    await children.open_idle(min(IDLE_CONCURRENCY, args.idle), MID_REPORT, concurrency, timeout=120)
    # One child repeats /start right before each mark, so that both marks find the bot in the
    # same state (its last getUpdates batch, its last delivery round) and only the new
    # conversations differ.
    probe = children.add(stop_at=0)
    await children.redo_first_step(probe)
    await target.ask("settle")
    took("warm_up")
    marked = await target.ask("mark", timeout=300)
    if "error" in marked:
        raise RuntimeError(f"memory mark failed: {marked['error']}")
    took("mark")
    missing = await children.open_idle(args.idle, MID_REPORT, concurrency, timeout=180)
    took("open")
    await children.redo_first_step(probe)
    settled = await target.ask("settle")
    after = await target.ask("growth", timeout=300)
    await target.ask("untrace")
    took("growth")
    count = args.idle - missing
    return {
        "conversations": count, "steps_each": MID_REPORT, "seconds_to_open": timings["open"], "timings": timings,
        "not_opened": missing, "settled": settled.get("quiet"),
        "traced_bytes_per_conversation": round(after["bytes"] / count) if count else None,
        "traced_blocks_per_conversation": round(after["blocks"] / count, 2) if count else None,
        "top_growth_sites": after["top"], "top_shrink_sites": after["bottom"],
        "rate_buckets_per_chat": after.get("rate_buckets_per_chat"),
        "flood_windows": after.get("flood_windows"),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.chaos:
        return chaos.main(args)
    if args.scale:
        from bench import scale  # the cluster's pieces come from tests/: loaded only for this

        return scale.main(args)
    from dialogs.content import ContentInvalid

    try:
        result = asyncio.run(run(args))
    except ContentInvalid as error:
        problems = str(error).splitlines()
        print("The content does not load, so neither would the bot; point CONTENT_DIR at a valid copy.\n"
              + "\n".join(problems[:10]) + (f"\n… and {len(problems) - 10} more" if len(problems) > 10 else ""),
              file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
