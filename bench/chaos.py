"""`python -m bench --chaos`: several bot processes on PostgreSQL, killed at random under a storm of
refusals from the Bot API, while children and staff play whole cases; prints what was lost and what
arrived twice. The long form of tests/test_several_processes.py (method and figures: bench/README.md).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

STORM_METHODS = ("sendMessage", "sendPhoto", "sendDocument", "copyMessage", "createForumTopic", "editMessageText",
                 "editMessageReplyMarkup", "editForumTopic", "answerCallbackQuery")
STORM_CODES = (429, 500, 502)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--chaos (several processes, killed at random)")
    group.add_argument("--chaos", action="store_true", help="run the chaos test instead of the load figures")
    group.add_argument("--processes", type=int, default=3, help="bot processes in webhook mode (default 3)")
    group.add_argument("--kills", type=int, default=50, help="SIGKILLs before the end (default 50)")
    group.add_argument("--storm", type=float, default=0.3,
                       help="share of send, edit and topic calls the fake refuses with 429/500/502 (default 0.3)")
    group.add_argument("--players", type=int, default=4, help="children playing cases at once (default 4)")
    group.add_argument("--seed", type=int, default=18, help="seed of the kills and of the storm")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from dialogs.engine import Engine
    from dialogs.validate import load_content
    from tests.cluster import BotCluster, fresh_postgres
    from tests.cluster_cases import keep_playing, tally
    from tests.resilience_support import ScriptedTelegram
    from tests.support import TEST_CONTENT, TOKEN, staff_world

    engine = Engine(load_content(TEST_CONTENT), "UA", "en")
    began = time.monotonic()
    async with fresh_postgres() as (url, why):
        if url is None:
            return {"error": why}
        async with ScriptedTelegram(token=TOKEN) as tg:
            staff_world(tg)
            with tempfile.TemporaryDirectory(prefix="oberih-chaos-") as tmp:
                async with BotCluster(tg, url, Path(tmp), size=args.processes) as cluster:
                    tg.set_fault_rate(args.storm, seed=args.seed, codes=STORM_CODES, methods=STORM_METHODS)
                    stop, done = asyncio.Event(), asyncio.Event()
                    playing = asyncio.create_task(keep_playing(tg, engine, args.players, done))
                    await cluster.chaos(stop, pause=(0.5, 2.5), seed=args.seed, limit=args.kills)
                    done.set()
                    cases = await playing
                    refused = sum(1 for call in tg.calls if call.injected)
                    tg.set_fault_rate(0)
                    counts = tally(tg, engine, cases)
                    unfinished = [case.error for case in cases if not case.done]
    return {
        "processes": args.processes, "kills": cluster.kills, "storm": args.storm, "calls_refused": refused,
        "cases": len(cases), "unfinished": len(unfinished), "first_unfinished": unfinished[:3],
        "expected": dict(counts.expected), "lost": dict(counts.lost), "duplicated": dict(counts.duplicated),
        "lost_total": counts.total_lost, "duplicated_total": counts.total_duplicated,
        "webhook_posts_made_again": cluster.redelivered, "wall_seconds": round(time.monotonic() - began, 1),
    }


def main(args: argparse.Namespace) -> int:
    result = asyncio.run(run(args))
    if args.json or "error" in result:
        print(json.dumps(result, indent=2))
        return 0 if "error" not in result else 2
    print(f"chaos: {result['processes']} processes in webhook mode on PostgreSQL behind a round-robin proxy, "
          f"{result['kills']} SIGKILLs, {result['storm']:.0%} of sends refused ({result['calls_refused']} calls), "
          f"{result['cases']} cases played in {result['wall_seconds']} s")
    for kind in sorted(result["expected"]):
        print(f"  {kind:<15} {result['expected'][kind]:>6} expected  {result['lost'].get(kind, 0):>4} lost  "
              f"{result['duplicated'].get(kind, 0):>4} duplicated")
    print(f"lost {result['lost_total']}, duplicated {result['duplicated_total']}, unfinished cases "
          f"{result['unfinished']}" + (f" (first: {result['first_unfinished']})" if result["unfinished"] else ""))
    return 0 if result["lost_total"] == 0 and result["unfinished"] == 0 else 1
