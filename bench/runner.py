"""Phases of a run: start a bot in its own process against a fresh fake server, load it, measure."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import resource
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from bench.children import Children
from bench.fake import BenchTelegram, clock
from bench.script import Action
from bench.target import ADMIN, OPERATOR, POLICE, TOKEN

REPO = Path(__file__).resolve().parent.parent


def own_cpu() -> float:
    """CPU seconds of this process: the fake server and the simulated children."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n*q/100), at least 1
    return ordered[int(rank) - 1]


class TargetDied(RuntimeError):
    pass


class Target:
    """The bot process (bench/target.py), driven by JSON lines."""

    def __init__(self, kind: str, api: str, data_dir: Path, database: str | None) -> None:
        self.kind, self.api, self.data_dir, self.database = kind, api, data_dir, database
        self.log_path = data_dir / f"{kind}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}
        self.final: dict[str, Any] | None = None

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "bench.target", self.kind, "--api", self.api,
                   "--data-dir", str(self.data_dir)]
        if self.database:
            command += ["--database", self.database]
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(self.log_path, "wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                cwd=REPO, env=env, limit=2**20)
        self.ready = await self._read(120)

    async def ask(self, cmd: str, timeout: float = 60, **fields: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read(timeout)

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            await self.proc.wait()
            raise TargetDied(f"the {self.kind} bot stopped (exit {self.proc.returncode}); its log:\n{self.log_tail()}")
        return json.loads(line)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def close(self) -> dict[str, Any] | None:
        """Stop gracefully; kill if it does not stop. Returns the final usage, if it said it."""
        if self.proc is None:
            return None
        final = None
        try:
            if self.proc.returncode is None:
                final = await self.ask("stop", timeout=30)
                await asyncio.wait_for(self.proc.wait(), 10)
        except (TargetDied, TimeoutError, ConnectionError, BrokenPipeError):
            pass
        finally:
            if self.proc.returncode is None:
                self.proc.kill()  # only our own child process, by its handle
                await self.proc.wait()
        return final


@contextlib.asynccontextmanager
async def bot_under_test(kind: str, data_dir: Path,
                         database: str | None) -> AsyncIterator[tuple[BenchTelegram, Target]]:
    """A fresh fake server (with the operator and police forum chats) and the bot polling it."""
    async with BenchTelegram(token=TOKEN) as tg:
        tg.add_group(OPERATOR, "Operators", is_forum=True)
        tg.add_group(POLICE, "Police", is_forum=True)
        tg.add_member(OPERATOR, ADMIN, "administrator")
        target = Target(kind, tg.base_url, data_dir, database)
        try:
            await target.start()
            await tg.wait_for(lambda fake: fake.calls_of("getUpdates"), timeout=60, what="the bot polls")
            yield tg, target
        finally:
            target.final = await target.close()


@dataclass
class Phase:
    name: str
    mode: str  # "flat" or "paced"
    children: int
    rate: float | None
    warmup: float
    seconds: float | None
    steps: int | None


async def warm_up(tg: BenchTelegram, script: list[Action], first_user_id: int, reports: int = 1,
                  timeout: float = 60) -> None:
    """`reports` children go through the whole script (checks that the script fits the bot)."""
    children = Children(tg, script, first_user_id)
    children.replace = False
    for _ in range(reports):
        children.add()
    children.start_flat_out()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while children.reports_done < reports and not children.errors and loop.time() < deadline:
        children.answered.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(children.answered.wait(), 0.5)
    if children.errors or children.reports_done < reports or children.unexpected:
        stuck = [f"user {c.user_id} after step {c.index} waits for {c.waiting} message(s)"
                 for c in children.active.values()][:3]
        strays = [f"unexpected message {text!r}" for text in children.unexpected_examples]
        raise RuntimeError("warm-up failed: " + "; ".join(children.errors[:3] + stuck + strays or ["timeout"]))
    tg.forget_history()


async def measure(tg: BenchTelegram, target: Target, children: Children, phase: Phase) -> dict[str, Any]:
    """One phase on an existing population of children (paused and ready when called; so again after)."""
    gc.disable()  # this process is the measuring instrument: no collector pauses while measuring
    try:
        return await _measure(tg, target, children, phase)
    finally:
        gc.enable()
        gc.collect()


async def _measure(tg: BenchTelegram, target: Target, children: Children, phase: Phase) -> dict[str, Any]:
    stop = asyncio.Event()
    pacer = None
    children.samples.clear()
    errors_before, unexpected_before = len(children.errors), children.unexpected
    if phase.mode == "flat":
        children.start_flat_out()
    else:
        assert phase.rate
        pacer = asyncio.create_task(children.paced(phase.rate, stop))
    await asyncio.sleep(phase.warmup)

    begin_usage, begin_cpu, begin_calls = await target.ask("usage", reset_longest_gc=True), own_cpu(), len(tg.calls)
    begin, begin_reports = clock(), children.reports_done
    begin_samples = len(children.samples)
    if phase.steps:
        while len(children.samples) - begin_samples < phase.steps and clock() - begin < 600:
            await asyncio.sleep(0.02)
    else:
        await asyncio.sleep(phase.seconds or 0)
    end, end_reports = clock(), children.reports_done
    end_usage, end_cpu = await target.ask("usage"), own_cpu()
    calls = tg.calls[begin_calls:]

    stop.set()
    children.pause()
    paced_info = await pacer if pacer else {}
    unanswered = await children.drain(15)
    # Throughput: answers that arrived within the window. Latency: steps whose update was made
    # available within the window, however late their answer came (the drain waited for it).
    steps = sum(1 for _, arrived in children.samples if begin <= arrived < end)
    window = [arrived - asked for asked, arrived in children.samples if begin <= asked < end]
    elapsed = end - begin
    methods = Counter(call.method for call in calls)
    child_messages = sum(1 for call in calls if call.method == "sendMessage" and call.ok
                         and isinstance(call.params.get("chat_id"), int) and call.params["chat_id"] > 0)

    def per_step(begin_value: float, end_value: float, scale: float = 1.0) -> float | None:
        return round(scale * (end_value - begin_value) / steps, 3) if steps else None

    result = {
        "phase": phase.name, "mode": phase.mode, "children": phase.children, "rate": phase.rate,
        "seconds": round(elapsed, 3), "steps": steps,
        "steps_per_second": round(steps / elapsed, 1) if elapsed else None,
        "latency_ms": {name: (round(value * 1000, 2) if value is not None else None) for name, value in (
            ("p50", percentile(window, 50)), ("p90", percentile(window, 90)), ("p99", percentile(window, 99)),
            ("max", max(window, default=None)), ("mean", sum(window) / len(window) if window else None))},
        "bot_cpu_percent": round(100 * (end_usage["cpu"] - begin_usage["cpu"]) / elapsed, 1),
        "bot_cpu_ms_per_step": per_step(begin_usage["cpu"], end_usage["cpu"], 1000),
        "bot_loop_thread_cpu_percent": round(100 * (end_usage["loop_thread"] - begin_usage["loop_thread"]) / elapsed, 1),
        "bot_gc": {"full_collections": end_usage["gc"]["collections"][2] - begin_usage["gc"]["collections"][2],
                   "longest_pause_ms": [round(1000 * seconds, 1) for seconds in end_usage["gc"]["longest"]],
                   "ms_per_step": [per_step(a, b, 1000) for a, b in zip(begin_usage["gc"]["seconds"],
                                                                         end_usage["gc"]["seconds"])],
                   "tracked_objects": end_usage["gc_objects"]},
        "pydantic_generic_models_built_per_step": per_step(begin_usage["pydantic_generic_models_built"],
                                                           end_usage["pydantic_generic_models_built"]),
        "to_thread_calls_per_step": per_step(begin_usage["to_thread_calls"], end_usage["to_thread_calls"]),
        "fake_cpu_percent": round(100 * (end_cpu - begin_cpu) / elapsed, 1),
        "child_messages_per_step": round(child_messages / steps, 2) if steps else None,
        "api_calls_per_step": {m: round(n / steps, 2) for m, n in methods.most_common()} if steps else {},
        "api_errors": sum(1 for call in calls if call.ok is False),
        "sql_per_step": ({name: per_step(begin_usage["sql"][name], end_usage["sql"][name])
                          for name in end_usage["sql"]} if "sql" in end_usage else None),
        "sql_statements_per_step": ({shape: per_step(begin_usage["sql_shapes"].get(shape, 0), n)
                                     for shape, n in sorted(end_usage["sql_shapes"].items(), key=lambda kv: -kv[1])
                                     if n - begin_usage["sql_shapes"].get(shape, 0)}
                                    if "sql_shapes" in end_usage else None),
        "reports_completed": end_reports - begin_reports,
        "unanswered_after_drain": unanswered,
        "unexpected_messages": children.unexpected - unexpected_before,
        "unexpected_examples": children.unexpected_examples[:3],
        "script_errors": children.errors[errors_before:][:3],
        **paced_info,
    }
    tg.forget_history()
    return result
