"""`python -m bench --scale`: steps a second of one bot process, then of several, on one PostgreSQL
database, in webhook mode behind the round-robin proxy of tests/cluster.py (issue 18: three processes
at least twice one). Method and figures: bench/README.md, "Several processes: throughput".

For each size (1, then `--processes`): a fresh database, a fresh fake Bot API server with the staff
chats, the processes started as `run_bot.py` (`tests/cluster.py` `BotCluster`, with the bench's raised
rate limits and the real content), and a webhook deliverer that posts as Telegram does: updates of
different chats at once, on at most `MAX_CONNECTIONS` connections (Telegram's default
`max_connections`), each chat's in order. `--children` children are spread over the report, then go
flat out; the steps whose answer arrived within `--seconds`, after `--warmup`, are counted, and the
CPU the bot processes used meanwhile is read from /proc.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

import aiohttp

from bench.children import Children
from bench.fake import BenchTelegram, clock
from bench.runner import own_cpu
from bench.target import RAISED_LIMITS
from tests.cluster import HOOK_PATH, SECRET, SECRET_HEADER, BotCluster, fresh_postgres
from tests.support import TOKEN, staff_world

MAX_CONNECTIONS = 40
SPREAD_TIMEOUT = 300.0


class TelegramLikeCluster(BotCluster):
    """The cluster, with updates posted to it the way Telegram posts them: several chats at once, on
    at most `MAX_CONNECTIONS` connections, each chat's updates in order."""

    closing = False

    async def __aexit__(self, *exc: object) -> None:
        self.closing = True  # the deliverer stops by itself too (a cancellation can be lost in wait_for)
        await super().__aexit__(*exc)

    async def _deliver(self) -> None:
        self._connections = asyncio.Semaphore(MAX_CONNECTIONS)
        self._queued: dict[Any, deque[dict[str, Any]]] = {}  # chat -> its updates not yet answered 200
        posting: set[asyncio.Task[None]] = set()
        index = 0
        try:
            while not self.closing:
                with contextlib.suppress(TimeoutError):
                    await self.tg.wait_for(lambda tg: len(tg.updates) > index, timeout=1, what="an update")
                for update in self.tg.updates[index:]:
                    chat = _chat_of(update)
                    if chat in self._queued:  # behind the chat's update being posted
                        self._queued[chat].append(update)
                        continue
                    self._queued[chat] = deque([update])
                    task = asyncio.create_task(self._post_chat(chat))
                    posting.add(task)
                    task.add_done_callback(posting.discard)
                index = len(self.tg.updates)
        finally:
            for task in posting:
                task.cancel()

    async def _post_chat(self, chat: Any) -> None:
        """Post the chat's updates in order, each until it is answered 200 (as Telegram retries a webhook)."""
        assert self._session is not None
        url = f"http://127.0.0.1:{self.proxy_port}{HOOK_PATH}"
        queue = self._queued[chat]
        while queue:
            async with self._connections:
                while True:
                    with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                        async with self._session.post(url, json=queue[0], headers={SECRET_HEADER: SECRET},
                                                      timeout=aiohttp.ClientTimeout(total=60)) as answer:
                            if answer.status == 200:
                                break
                    self.redelivered += 1
                    await asyncio.sleep(0.05)
            self.delivered += 1
            queue.popleft()
        del self._queued[chat]


def _chat_of(update: dict[str, Any]) -> Any:
    for key in ("message", "edited_message", "callback_query"):
        if key in update:
            inner = update[key]
            return (inner.get("message") or inner)["chat"]["id"] if key == "callback_query" else inner["chat"]["id"]
    return update.get("update_id")


def _machine_busy() -> tuple[int, int]:
    """(busy, all) jiffies of the whole machine so far, from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)  # idle and iowait are not busy


def _cpu_seconds(pids: list[int]) -> float:
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


async def _one_size(args: argparse.Namespace, size: int, script: list, content_dir: Path,
                    first_user_id: int) -> dict[str, Any]:
    async with fresh_postgres() as (url, why):
        if url is None:
            return {"error": why}
        async with BenchTelegram(token=TOKEN) as tg:
            staff_world(tg)
            limits = {name.upper(): str(value) for name, value in RAISED_LIMITS.items()}
            env = {**limits, "CONTENT_DIR": str(content_dir), "LOG_LEVEL": "WARNING"}
            with tempfile.TemporaryDirectory(prefix="oberih-scale-") as tmp:
                async with TelegramLikeCluster(tg, url, Path(tmp), size=size, env=env) as cluster:
                    children = Children(tg, script, first_user_id)
                    tg.listener = children._on_message
                    missing = await children.spread(args.children, timeout=SPREAD_TIMEOUT)
                    if missing:
                        return {"error": f"{missing} children did not reach their starting step"}
                    children.release()
                    children.start_flat_out()
                    await asyncio.sleep(args.warmup)
                    pids = [node.proc.pid for node in cluster.nodes if node.proc is not None]
                    begin, cpu, harness, machine = clock(), _cpu_seconds(pids), own_cpu(), _machine_busy()
                    await asyncio.sleep(args.seconds)
                    end, cpu, harness = clock(), _cpu_seconds(pids) - cpu, own_cpu() - harness
                    busy, every = (after - before for after, before in zip(_machine_busy(), machine, strict=True))
                    children.pause()
                    await children.drain(30)
                    steps = sum(1 for _, arrived in children.samples if begin <= arrived < end)
                    latencies = sorted(arrived - asked for asked, arrived in children.samples if begin <= asked < end)
                    return {
                        "processes": size, "steps_per_second": round(steps / (end - begin), 1),
                        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
                        "bot_cpu_cores": round(cpu / (end - begin), 2),
                        "bot_cpu_ms_per_step": round(1000 * cpu / steps, 2) if steps else None,
                        "harness_cpu_cores": round(harness / (end - begin), 2),
                        "machine_busy_percent": round(100 * busy / every, 1) if every else None,
                        "script_errors": children.errors[:3], "unexpected_messages": children.unexpected,
                        "webhook_posts_made_again": cluster.redelivered,
                    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.script import report_script
    from bot.settings import Settings
    from dialogs.engine import Engine
    from dialogs.validate import load_content

    content_dir = Settings(_env_file=None).content_dir
    script = report_script(Engine(load_content(content_dir), "UA", "en"))
    sizes = [1, args.processes]
    results = [await _one_size(args, size, script, content_dir, 1_000_000_000 + 10_000_000 * i)
               for i, size in enumerate(sizes)]
    errors = [result["error"] for result in results if "error" in result]
    if errors:
        return {"error": errors[0]}
    one, several = results
    return {"cpu_cores": os.cpu_count(), "children": args.children, "seconds": args.seconds,
            "one": one, "several": several,
            "several_over_one": round(several["steps_per_second"] / one["steps_per_second"], 2)
            if one["steps_per_second"] else None}


def main(args: argparse.Namespace) -> int:
    result = asyncio.run(run(args))
    if args.json or "error" in result:
        print(json.dumps(result, indent=2))
        return 0 if "error" not in result else 2
    print(f"scale: bot processes in webhook mode on one PostgreSQL database, {result['children']} children "
          f"flat out, {result['seconds']} s measured; this machine has {result['cpu_cores']} CPU cores")
    for row in (result["one"], result["several"]):
        print(f"  {row['processes']} process{'es' if row['processes'] > 1 else ''}: {row['steps_per_second']:>7} "
              f"steps/s, p50 {row['p50_ms']} ms, bots' CPU {row['bot_cpu_cores']} cores "
              f"({row['bot_cpu_ms_per_step']} ms a step); this process (fake, proxy, children) "
              f"{row['harness_cpu_cores']} cores; the machine {row['machine_busy_percent']} % busy "
              "(the rest is mostly the PostgreSQL server)")
    print(f"{result['several']['processes']} processes / 1: {result['several_over_one']} (target >= 2)")
    return 0
