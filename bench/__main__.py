"""`python -m bench`: Oberih under load from many simulated children, next to a bare aiogram echo bot.

See bench/README.md for what each figure means and how to reproduce it.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.children import Children
from bench.runner import Phase, bot_under_test, measure, warm_up
from bench.script import MID_REPORT, echo_script, report_script
from bench.target import HUGE, RAISED_LIMITS

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
    length.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase (default 8)")
    length.add_argument("--steps", type=int, help="measure this many steps per phase instead of seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each phase (default 2)")
    parser.add_argument("--idle", type=int, default=400,
                        help="conversations opened mid-report for the memory figure (default 400)")
    parser.add_argument("--database", help="SQLAlchemy URL for Oberih (default: a temporary SQLite file); "
                        "a PostgreSQL URL (postgresql+asyncpg://…) is allowed")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--profile", metavar="FILE", help="profile Oberih's event-loop thread during the "
                        "flat-out phase: FILE.txt or FILE.html with pyinstrument (not in requirements: pip install "
                        "pyinstrument), any other name: cProfile pstats")
    parser.add_argument("--skip-echo", action="store_true", help="do not run the echo bot")
    parser.add_argument("--skip-memory", action="store_true", help="do not measure idle-conversation memory")
    args = parser.parse_args(argv)
    if args.children < 1 or (args.rate is not None and args.rate <= 0) or args.idle < 1:
        parser.error("--children, --rate and --idle must be positive")
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
    echo = echo_script(len(script))
    users = itertools.count(1_000_000_000, 10_000_000)  # a fresh range of Telegram user ids per phase
    started = time.perf_counter()
    result: dict[str, Any] = {
        "machine": machine(),
        "database": "postgresql" if (args.database or "").startswith("postgres") else "sqlite (temporary file)",
        "raised_limits": {name.upper(): value for name, value in RAISED_LIMITS.items()},
        "report_steps": len(script), "content_dir": str(content_dir), "oberih": {}, "echo": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="oberih-bench-"))
    try:
        async with bot_under_test("oberih", tmp / "oberih", args.database) as (tg, target):
            await warm_up(tg, script, next(users), reports=3)
            for phase in phases(args):
                profiling = args.profile and phase.mode == "flat"
                if profiling:
                    await target.ask("profile_on", path=str(Path(args.profile).resolve()))
                result["oberih"][phase.name] = await measure(tg, target, script, phase, next(users))
                if profiling:
                    await target.ask("profile_off")
                await target.ask("settle")
            result["oberih"]["internals"] = {k: v for k, v in (await target.ask("usage")).items()
                                             if k in ("rate_buckets_per_chat", "flood_windows")}
        result["oberih"]["peak_rss_kb"] = (target.final or {}).get("maxrss_kb")

        if not args.skip_memory:
            result["oberih"]["idle"] = await idle_memory(args, script, tmp / "memory", users)

        if not args.skip_echo:
            async with bot_under_test("echo", tmp / "echo", None) as (tg, target):
                await warm_up(tg, echo, next(users), reports=3)
                for phase in phases(args):
                    result["echo"][phase.name] = await measure(tg, target, echo, phase, next(users))
            result["echo"]["peak_rss_kb"] = (target.final or {}).get("maxrss_kb")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["verdict"] = verdict(result)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    return result


async def idle_memory(args: argparse.Namespace, script: list, data_dir: Path, users: Any) -> dict[str, Any]:
    """A second Oberih process traced by tracemalloc from its first line: after a warm-up, open
    `--idle` conversations mid-report, wait until everything is stored and sent, and divide the
    net growth of live Python memory (after gc) by their number."""
    async with bot_under_test("oberih", data_dir, args.database, trace=True) as (tg, target):
        await warm_up(tg, script, next(users), reports=min(20, args.children))
        warm = Children(tg, script, next(users))
        await warm.open_idle(min(50, args.idle), MID_REPORT, args.children, timeout=120)
        await target.ask("settle")
        before = await target.ask("mark")
        children = Children(tg, script, next(users))
        opened_at = time.perf_counter()
        missing = await children.open_idle(args.idle, MID_REPORT, args.children, timeout=180)
        took = time.perf_counter() - opened_at
        settled = await target.ask("settle")
        after = await target.ask("growth")
    count = args.idle - missing
    return {
        "conversations": count, "steps_each": MID_REPORT, "seconds_to_open": round(took, 1),
        "not_opened": missing, "settled": settled.get("quiet"),
        "traced_bytes_per_conversation": round(after["bytes"] / count) if count else None,
        "traced_blocks_per_conversation": round(after["blocks"] / count, 2) if count else None,
        "rss_bytes_per_conversation": (round((after["rss_kb_before_snapshot"] - before["rss_kb"]) * 1024 / count)
                                       if count else None),
        "top_growth_sites": after["top"], "top_shrink_sites": after["bottom"],
        "rate_buckets_per_chat": after.get("rate_buckets_per_chat"),
        "flood_windows": after.get("flood_windows"),
    }


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    o_flat, e_flat = result["oberih"].get("flat_out"), result["echo"].get("flat_out")
    if o_flat and e_flat and e_flat["steps_per_second"]:
        ratio = o_flat["steps_per_second"] / e_flat["steps_per_second"]
        out["oberih_over_echo_throughput"] = {"value": round(ratio, 3), "target": ">= 0.5",
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
        f"Python {m['python']}, database: {result['database']}, content: {result['content_dir']}",
        f"Rate limits raised for the run: {', '.join(result['raised_limits'])} = {HUGE:.0e} "
        "(Telegram's limits are not what is measured).",
        f"One step = one child update handled and answered; a report is {result['report_steps']} steps. "
        "Latency: update available to getUpdates -> bot's first message to that child reaches the fake server.",
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
    if "flat_out" in o:
        calls = ", ".join(f"{k} {v}" for k, v in o["flat_out"]["api_calls_per_step"].items())
        lines.append(f"Oberih Bot API calls per step (flat out): {calls}")
    idle = o.get("idle")
    if idle:
        lines += [
            f"idle conversations: {idle['conversations']} opened mid-report ({idle['steps_each']} steps each, "
            f"{idle['seconds_to_open']} s, traced process): live Python memory "
            f"{idle['traced_bytes_per_conversation']} B and {idle['traced_blocks_per_conversation']} blocks per "
            f"conversation; RSS {idle['rss_bytes_per_conversation']} B per conversation",
            "  largest growth: " + "; ".join(f"{s['where']} {s['bytes'] / max(1, idle['conversations']):.0f} B"
                                           for s in idle["top_growth_sites"][:6]),
        ]
    lines.append("")
    names = {"oberih_over_echo_throughput": "Oberih / echo throughput (flat out)",
             "p99_at_paced_rate_ms": "Oberih p99 latency, paced", "bytes_per_idle_conversation":
             "bytes per idle conversation"}
    for key, v in result["verdict"].items():
        extra = f" at {v['achieved_rate']:.0f} steps/s achieved" if "achieved_rate" in v else ""
        lines.append(f"{names[key]}: {v['value']}{extra} (target {v['target']}) — {'MET' if v['met'] else 'NOT MET'}")
    lines.append(f"wall time {result['wall_seconds']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
