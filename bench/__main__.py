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
from bench.database import scratch_database
from bench.runner import Phase, bot_under_test, measure, warm_up
from bench.script import MID_REPORT, echo_script, report_script
from bench.target import HUGE, RAISED_LIMITS

IDLE_CONCURRENCY = 20  # conversations being opened at once for the memory figure
TARGETS = {"oberih_over_echo": 0.5, "p99_ms": 50.0, "paced_rate": 200.0, "idle_bytes": 2048}


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
                        "a PostgreSQL URL (postgresql+asyncpg://…) is allowed")
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
    parser.add_argument("--skip-memory", action="store_true", help="do not measure idle-conversation memory")
    chaos.add_arguments(parser)
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
    echo = echo_script(len(script))
    users = itertools.count(1_000_000_000, 10_000_000)  # a fresh range of Telegram user ids per phase
    started = time.perf_counter()
    result: dict[str, Any] = {
        "machine": machine(),
        "raised_limits": {name.upper(): value for name, value in RAISED_LIMITS.items()},
        "report_steps": len(script), "spread": args.spread, "content_dir": str(content_dir), "oberih": {}, "echo": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="oberih-bench-"))
    stages = result["stage_seconds"] = {}
    mark = [time.perf_counter()]

    def stage(name: str) -> None:
        now = time.perf_counter()
        stages[name] = round(now - mark[0], 1)
        mark[0] = now

    try:
        async with scratch_database(args.database) as (database, described), \
                bot_under_test("oberih", tmp / "oberih", database) as (tg, target):
            result["database"] = described
            stage("oberih_start")
            await warm_up(tg, script, next(users), reports=3)
            stage("oberih_warm_up")
            if not args.skip_memory:  # first, while tracemalloc has little to trace; it stops after
                result["oberih"]["idle"] = await idle_memory(args, tg, target, script, next(users))
                stage("memory")
            oberih = Bot("oberih", tg, target, await spread(args, tg, script, next(users)), settle=True)
            stage("oberih_spread")
            async with contextlib.AsyncExitStack() as echo_running:
                bots = [oberih]
                if not args.skip_echo:
                    echo_tg, echo_target = await echo_running.enter_async_context(
                        bot_under_test("echo", tmp / "echo", None))
                    await warm_up(echo_tg, echo, next(users), reports=3)
                    bots.append(Bot("echo", echo_tg, echo_target, await spread(args, echo_tg, echo, next(users))))
                    stage("echo_start_and_spread")
                await load(args, bots, result)
                stage("phases")
                usage = await target.ask("usage")
            result["oberih"]["internals"] = {k: v for k, v in usage.items()
                                             if k in ("rate_buckets_per_chat", "flood_windows")}
            result["oberih"]["peak_rss_kb"] = usage["maxrss_kb"]
            if not args.skip_echo:
                result["echo"]["peak_rss_kb"] = (echo_target.final or {}).get("maxrss_kb")
        stage("stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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
    """The phases, each bot's in turn; the flat-out phase `--rounds` times. A bot's `flat_out` is its
    round with the median throughput (with the echo bot: the round with the median ratio, and each
    round's ratio is kept); of an even number of rounds, the lower of the middle two."""
    profile = args.profile
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
        if len(bots) == 2 and len(rounds) > 1:
            for measured in rounds:
                measured["ratio"] = _ratio(measured["oberih"], measured["echo"])
            result["ratios_by_round"] = [measured["ratio"] for measured in rounds]
            middle = sorted(rounds, key=lambda measured: measured["ratio"] or 0)[(len(rounds) - 1) // 2]
        else:
            middle = sorted(rounds, key=lambda measured: measured["oberih"]["steps_per_second"] or 0)[
                (len(rounds) - 1) // 2]
        for bot in bots:
            result[bot.name][phase.name] = middle[bot.name]


def _ratio(oberih: dict[str, Any], echo: dict[str, Any]) -> float | None:
    if not (oberih["steps_per_second"] and echo["steps_per_second"]):
        return None
    return round(oberih["steps_per_second"] / echo["steps_per_second"], 3)


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


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    o_flat, e_flat = result["oberih"].get("flat_out"), result["echo"].get("flat_out")
    ratio = o_flat and e_flat and _ratio(o_flat, e_flat)
    if ratio:
        out["oberih_over_echo_throughput"] = {"value": ratio, "target": ">= 0.5",
                                              "by_round": result.get("ratios_by_round"),
                                              "met": ratio >= TARGETS["oberih_over_echo"]}
    paced = next((v for k, v in result["oberih"].items() if k.startswith("paced_")), None)
    if paced and paced["latency_ms"]["p99"] is not None:
        p99, rate = paced["latency_ms"]["p99"], paced["steps_per_second"]
        out["p99_at_paced_rate_ms"] = {"value": p99, "achieved_rate": rate, "target": "< 50 ms at 200 steps/s",
                                       "met": p99 < TARGETS["p99_ms"] and paced["rate"] >= TARGETS["paced_rate"]
                                       and rate >= 0.95 * paced["rate"]}
    idle = result["oberih"].get("idle")
    if idle and idle["traced_bytes_per_conversation"] is not None:
        value = idle["traced_bytes_per_conversation"]
        out["bytes_per_idle_conversation"] = {"value": value, "target": "< 2048", "met": value < TARGETS["idle_bytes"]}
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Oberih load benchmark — {m['cpu_cores']} CPU cores ({m['cpu_model'] or 'unknown CPU'}), "
        f"Python {m['python']}, database: {result.get('database')}, content: {result['content_dir']}",
        f"Rate limits raised for the run: {', '.join(result['raised_limits'])} = {HUGE:.0e} "
        "(Telegram's limits are not what is measured).",
        f"One step = one child update handled and answered; a report is {result['report_steps']} steps; "
        + ("children spread over the report first, so every phase measures the mix of whole reports." if result["spread"] else
           "every child starts at /start (--from-start: the first steps weigh more, and the mix drifts from phase to phase).")
        + "\nLatency: update available to getUpdates -> the bot's first message to that child reaches the fake server.",
        "",
        f"{'bot / phase':<24}{'children':>9}{'steps/s':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'bot CPU':>9}{'fake CPU':>10}{'reports':>9}",
    ]
    for bot in ("oberih", "echo"):
        for name, r in result[bot].items():
            if not isinstance(r, dict) or "steps_per_second" not in r:
                continue
            lat = r["latency_ms"]
            mode = "flat out" if r["mode"] == "flat" else f"paced {r['rate']:g}/s"
            label = f"{bot} {mode}"
            lines.append(
                f"{label:<24}{r['children']:>9}{r['steps_per_second']:>10.1f}{_ms(lat['p50']):>9}{_ms(lat['p90']):>9}"
                f"{_ms(lat['p99']):>9}{_ms(lat['max']):>9}{r['bot_cpu_percent']:>8.0f}%{r['fake_cpu_percent']:>9.0f}%"
                f"{r['reports_completed']:>9}")
            problems = [f"{k}={r[k]}" for k in ("api_errors", "unanswered_after_drain", "unexpected_messages")
                        if r.get(k)] + ([f"late_ticks={r['late_ticks']}"] if r.get("late_ticks") else [])
            problems += [f"script error: {e}" for e in r.get("script_errors", [])]
            if problems:
                lines.append(f"{'':<24}  ! " + ", ".join(problems))
    lines.append("")
    o = result["oberih"]
    for bot in ("oberih", "echo"):
        if result[bot].get("peak_rss_kb"):
            lines.append(f"peak RSS of the {bot} process (load phases): {result[bot]['peak_rss_kb'] / 1024:.1f} MB")
    for name, r in o.items():
        if not isinstance(r, dict) or "steps_per_second" not in r or not r["steps"]:
            continue
        echo = result["echo"].get(name) or {}
        sql = r.get("sql_per_step") or {}
        lines.append(
            f"Oberih per step ({name.replace('_', ' ')}): {r['bot_cpu_ms_per_step']:.1f} ms CPU"
            + (f" (echo {echo['bot_cpu_ms_per_step']:.2f} ms)" if echo.get("bot_cpu_ms_per_step") else "")
            + f"; {sql.get('statements', 0):.1f} SQL statements, {sql.get('commits', 0):.1f} commits;"
            f" {r['child_messages_per_step']} messages to the child;"
            f" {r['pydantic_generic_models_built_per_step']} pydantic model classes built;"
            f" {r['to_thread_calls_per_step']} calls sent to a thread")
        lines.append("    Bot API calls per step: " + ", ".join(f"{k} {v}" for k, v in r["api_calls_per_step"].items()))
    pauses = [f"{bot} {name.replace('_', ' ')} {max(r['bot_gc']['longest_pause_ms']):.0f} ms"
              f" ({r['bot_gc']['full_collections']} full)"
              for bot in ("oberih", "echo") for name, r in result[bot].items()
              if isinstance(r, dict) and "bot_gc" in r]
    if pauses:
        lines.append("longest garbage-collector pause in the window (the whole bot stops): " + ", ".join(pauses))
    idle = o.get("idle")
    if idle:
        lines += [
            f"idle conversations: {idle['conversations']} opened mid-report ({idle['steps_each']} steps each, "
            f"{idle['seconds_to_open']} s, traced process): live Python memory "
            f"{idle['traced_bytes_per_conversation']} B and {idle['traced_blocks_per_conversation']} blocks per "
            f"conversation (an upper bound)",
            "  largest growth: " + "; ".join(f"{s['where']} {s['bytes'] / max(1, idle['conversations']):.0f} B"
                                           for s in idle["top_growth_sites"][:6]),
        ]
    lines.append("")
    names = {"oberih_over_echo_throughput": "Oberih / echo throughput (flat out)",
             "p99_at_paced_rate_ms": "Oberih p99 latency, paced", "bytes_per_idle_conversation":
             "bytes per idle conversation"}
    for key, v in result["verdict"].items():
        extra = f" at {v['achieved_rate']:.0f} steps/s achieved" if "achieved_rate" in v else ""
        if v.get("by_round"):
            extra = f", the median of {len(v['by_round'])} rounds ({', '.join(map(str, v['by_round']))})"
        lines.append(f"{names[key]}: {v['value']}{extra} (target {v['target']}) — {'MET' if v['met'] else 'NOT MET'}")
    lines.append(f"wall time {result['wall_seconds']} s ("
                 + ", ".join(f"{k} {v}" for k, v in result["stage_seconds"].items()) + ")")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.chaos:
        return chaos.main(args)
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
