"""What `python -m bench` concludes and prints: the ratios between bots, the verdicts, the table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.target import HUGE

TARGETS = {"p99_ms": 50.0, "paced_rate": 200.0, "idle_bytes": 2048}
# The bots a run may have, in the order they are measured and shown: Oberih (on the database given),
# Oberih again on a temporary SQLite file (when the database given is PostgreSQL), the echo bot.
BOTS = {"oberih": "Oberih", "sqlite": "Oberih on SQLite", "echo": "echo"}


@dataclass(frozen=True)
class Comparison:
    """Flat-out steps/s of one bot over another's, taken in the same round."""

    key: str
    over: str
    under: str
    target: float
    label: str


COMPARISONS = (
    Comparison("oberih_over_echo_throughput", "oberih", "echo", 0.5, "Oberih / echo throughput (flat out)"),
    Comparison("postgresql_over_sqlite_throughput", "oberih", "sqlite", 0.5,
               "PostgreSQL / SQLite throughput (flat out)"),
)


def comparisons(names: list[str]) -> list[Comparison]:
    """The comparisons whose two bots are both in the run; the first picks the round shown."""
    return [c for c in COMPARISONS if c.over in names and c.under in names]


def ratio(over: dict[str, Any], under: dict[str, Any]) -> float | None:
    if not (over["steps_per_second"] and under["steps_per_second"]):
        return None
    return round(over["steps_per_second"] / under["steps_per_second"], 3)


def median_round(values: list[float | None]) -> int:
    """Which round has the median value (None counts as 0: a round with no steps); of an even number
    of rounds, the lower of the middle two."""
    return sorted(range(len(values)), key=lambda i: values[i] or 0)[(len(values) - 1) // 2]


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in COMPARISONS:
        by_round = result.get("ratios_by_round", {}).get(c.key)
        if by_round:
            value = by_round[median_round(by_round)] or 0.0
            out[c.key] = {"value": value, "target": f">= {c.target:g}", "by_round": by_round,
                          "met": value >= c.target}
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


def _phases(figures: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A bot's measured phases (its entry also holds memory and other figures)."""
    return [(name, r) for name, r in figures.items() if isinstance(r, dict) and "steps_per_second" in r]


def table(result: dict[str, Any]) -> str:
    m = result["machine"]
    bots = [name for name in BOTS if name in result]
    lines = [
        f"Oberih load benchmark — {m['cpu_cores']} CPU cores ({m['cpu_model'] or 'unknown CPU'}), "
        f"Python {m['python']}, database: {result.get('database')}"
        + (", and the sqlite bot: Oberih again on a temporary SQLite file" if "sqlite" in result else "")
        + f", content: {result['content_dir']}",
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
    for bot in bots:
        for name, r in _phases(result[bot]):
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
    for bot in bots:
        if result[bot].get("peak_rss_kb"):
            lines.append(f"peak RSS of the {bot} process (load phases): {result[bot]['peak_rss_kb'] / 1024:.1f} MB")
    for bot in (name for name in bots if name != "echo"):
        for name, r in _phases(result[bot]):
            if not r["steps"]:
                continue
            echo = result.get("echo", {}).get(name) or {}
            sql = r.get("sql_per_step") or {}
            lines.append(
                f"{BOTS[bot]} per step ({name.replace('_', ' ')}): {r['bot_cpu_ms_per_step']:.1f} ms CPU"
                + (f" (echo {echo['bot_cpu_ms_per_step']:.2f} ms)" if echo.get("bot_cpu_ms_per_step") else "")
                + f"; {sql.get('statements', 0):.1f} SQL statements, {sql.get('commits', 0):.1f} commits;"
                f" {r['child_messages_per_step']} messages to the child;"
                f" {r['pydantic_generic_models_built_per_step']} pydantic model classes built;"
                f" {r['to_thread_calls_per_step']} calls sent to a thread")
            lines.append("    Bot API calls per step: "
                         + ", ".join(f"{k} {v}" for k, v in r["api_calls_per_step"].items()))
    pauses = [f"{bot} {name.replace('_', ' ')} {max(r['bot_gc']['longest_pause_ms']):.0f} ms"
              f" ({r['bot_gc']['full_collections']} full)"
              for bot in bots for name, r in _phases(result[bot]) if "bot_gc" in r]
    if pauses:
        lines.append("longest garbage-collector pause in the window (the whole bot stops): " + ", ".join(pauses))
    idle = result["oberih"].get("idle")
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
    names = {c.key: c.label for c in COMPARISONS} | {
        "p99_at_paced_rate_ms": "Oberih p99 latency, paced", "bytes_per_idle_conversation": "bytes per idle conversation"}
    for key, v in result["verdict"].items():
        extra = f" at {v['achieved_rate']:.0f} steps/s achieved" if "achieved_rate" in v else ""
        if len(v.get("by_round") or ()) > 1:
            extra = f", the median of {len(v['by_round'])} rounds ({', '.join(map(str, v['by_round']))})"
        lines.append(f"{names[key]}: {v['value']}{extra} (target {v['target']}) — {'MET' if v['met'] else 'NOT MET'}")
    lines.append(f"wall time {result['wall_seconds']} s ("
                 + ", ".join(f"{k} {v}" for k, v in result["stage_seconds"].items()) + ")")
    return "\n".join(lines)
