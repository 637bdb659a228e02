"""The bot under test, alone in its own process: Oberih (the real app, as `run_bot.py` builds it) or a
bare aiogram 3 echo bot. The benchmark drives it with one JSON object a line on stdin and reads one
JSON answer a line on stdout; logs go to stderr.

    python -m bench.target oberih --api http://127.0.0.1:PORT --data-dir DIR [--database URL]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import logging
import os
import re
import resource
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

TOKEN = "123456:BENCH-TOKEN"
OPERATOR = -1001000000001
POLICE = -1001000000002
ADMIN = 700001
HUGE = 10**9
# Telegram's limits (30 messages/s, 1/s per chat, 20/min per group) are the platform's, not the
# bot's speed: they are raised far out of the way for the run.
RAISED_LIMITS = dict(rate_global_per_second=HUGE, rate_chat_per_second=HUGE, rate_group_per_minute=HUGE,
                     child_messages_per_minute=HUGE, daily_report_cap=HUGE)
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def thread_cpu() -> dict[str, float]:
    """CPU seconds of the event-loop thread and of all other threads (SQLite runs in the loop thread; asyncpg none)."""
    main, ticks = threading.main_thread().native_id, os.sysconf("SC_CLK_TCK")
    out = {"loop_thread": 0.0, "other_threads": 0.0}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        out["loop_thread" if int(task) == main else "other_threads"] += seconds
    return out


GC = {"collections": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "longest": [0.0, 0.0, 0.0]}
COUNTS = {"pydantic_generic_models_built": 0, "to_thread_calls": 0}


def count_calls() -> None:
    """Observe two costs found while profiling (bench/README.md): pydantic building a parametrized
    generic model class (aiogram's Response[T]) and asyncio.to_thread (aiogram runs every plain,
    non-async filter such as F.chat.type == ... in a worker thread)."""
    from pydantic._internal import _generics

    built = _generics.create_generic_submodel

    def counted_build(*args: Any, **kwargs: Any) -> Any:
        COUNTS["pydantic_generic_models_built"] += 1
        return built(*args, **kwargs)

    _generics.create_generic_submodel = counted_build
    to_thread = asyncio.to_thread

    async def counted_to_thread(*args: Any, **kwargs: Any) -> Any:
        COUNTS["to_thread_calls"] += 1
        return await to_thread(*args, **kwargs)

    asyncio.to_thread = counted_to_thread  # type: ignore[assignment]


_gc_started = [0.0]


def _time_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        took = time.perf_counter() - _gc_started[0]
        generation = info["generation"]
        GC["collections"][generation] += 1
        GC["seconds"][generation] += took
        GC["longest"][generation] = max(GC["longest"][generation], took)


def usage() -> dict[str, Any]:
    self = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/statm") as statm:
        rss_kb = int(statm.read().split()[1]) * PAGE_KB
    traced = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (None, None)
    return {"cpu": self.ru_utime + self.ru_stime, **thread_cpu(), "gc": {k: list(v) for k, v in GC.items()},
            **COUNTS,
            "gc_objects": len(gc.get_objects()), "rss_kb": rss_kb, "maxrss_kb": self.ru_maxrss,
            "traced": traced[0], "traced_peak": traced[1], "time": time.perf_counter()}


_FROM = re.compile(r"\sFROM\s+(\S+)")


def _shapes(statements: dict[str, int]) -> dict[str, int]:
    """Statement counts by their first word and table ("SELECT outbox")."""
    shapes: dict[str, int] = {}
    for sql, count in statements.items():
        words = sql.split()
        table = next((words[i + 1] for i, w in enumerate(words[:-1]) if w.upper() in ("FROM", "INTO", "UPDATE")), "")
        shape = f"{words[0].upper()} {table.strip(chr(34))}"
        shapes[shape] = shapes.get(shape, 0) + count
    return shapes


_VERBS = {"select": "SELECT FROM {}", "insert": "INSERT INTO {}", "update": "UPDATE {} SET",
          "delete": "DELETE FROM {}"}  # as sqlite3's trace gives them below, for `_shapes`


def _shape(executable: Any) -> str:
    """A statement's first words and table ("UPDATE outbox SET"), read from the statement object."""
    for verb, words in _VERBS.items():
        if getattr(executable, f"is_{verb}", False):
            if verb == "select":
                froms = executable.get_final_froms()
                table = getattr(froms[0], "name", "") if froms else ""
            else:
                table = executable.table.name
            return words.format(table)
    return str(executable).split(" ", 1)[0].upper()


class Oberih:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    async def start(self) -> None:
        from cryptography.fernet import Fernet

        from app.build import build
        from app.run import serve
        from bot.settings import load_settings

        data_dir = Path(self.args.data_dir)
        # PostgreSQL wants the keys in the settings (every process must share them); SQLite makes its own.
        keys = {"data_key": Fernet.generate_key().decode(), "id_pepper": "bench"} if self.args.database else {}
        settings = load_settings(
            _env_file=None, telegram_bot_token=TOKEN, telegram_api_url=self.args.api, operator_chat_id=OPERATOR,
            police_chat_id=POLICE, admin_ids=str(ADMIN), data_dir=data_dir, web_port=0,
            database_url=self.args.database or f"sqlite:///{data_dir / 'oberih.db'}",
            default_language="en", log_level="WARNING", **keys, **RAISED_LIMITS)
        self.app = await build(settings)
        # As run_bot.py does between build and serve: what start-up built lives as long as the
        # process, so it is kept out of every garbage collection.
        gc.collect()
        gc.freeze()
        self.sql = {"commits": 0, "rollbacks": 0}
        await self._count_sql(self.app.db)
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(serve(self.app, self.stop_event))
        for _ in range(1000):
            if self.task.done():
                self.task.result()  # raises the start-up error
            if self.app.runner is not None and self.app.runner.addresses:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("Oberih did not start")

    async def _count_sql(self, db: Any) -> None:
        from collections import Counter

        # By statement and table ("UPDATE outbox"), no values: the counting runs inside the measured
        # process, so it must cost next to nothing. Through public hooks only.
        self.statements: Counter[str] = Counter()

        if db.dialect != "sqlite":
            # PostgreSQL through the database's own hook (Database.watch): an event listener would
            # take the prepared statements off the fast path (storage/fast_path.py).
            shapes: dict[Any, str] = {}

            def statement(executable: Any) -> None:
                shape = shapes.get(executable)
                if shape is None:
                    shape = _shape(executable)
                    if executable.get_execution_options().get("oberih_prepared"):  # built once: kept
                        shapes[executable] = shape
                self.statements[shape] += 1

            def commit() -> None:
                self.sql["commits"] += 1

            db.watch(statement, commit)
            return
        # SQLite is counted by sqlite3's trace callback, which sees every statement SQLite runs: an
        # event listener would make SQLAlchemy dispatch events on every statement, and the prepared
        # statements take SQLAlchemy's path whenever one is on (storage/fast_path.py). sqlite3
        # hands it the SQL with the values written in, so only the verb and table are kept.
        def traced(sql: str) -> None:
            verb = sql[:sql.find(" ")] if " " in sql else sql
            if verb == "COMMIT":
                self.sql["commits"] += 1
            elif verb == "ROLLBACK":
                self.sql["rollbacks"] += 1
            elif verb == "SELECT":
                found = _FROM.search(sql)  # (SQLAlchemy puts FROM on a line of its own)
                self.statements["SELECT FROM " + (found.group(1) if found else "")] += 1
            elif verb != "BEGIN":
                self.statements[" ".join(sql.split(" ", 3)[:3])] += 1  # INSERT INTO x, UPDATE x SET, DELETE FROM x

        await db.run_sync(lambda connection: connection.connection.driver_connection.set_trace_callback(traced))

    async def settle(self, timeout: float) -> bool:
        """Wait until nothing waits in the inbox or the outbox and no send is in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with self.app.db.transaction() as tx:
                busy = await tx.inbox.depth() or await tx.outbox.depth()
            if not busy and not self.app.worker.pool.in_flight and not self.app.db.calls_running:
                return True
            await asyncio.sleep(0.05)
        return False

    def internals(self) -> dict[str, Any]:
        return {"rate_buckets_per_chat": self.app.worker.limits.chats,
                "flood_windows": len(self.app.conversations.flood), "sql": {**self.sql, "statements": self.statements.total()},
                "sql_shapes": _shapes(self.statements)}

    async def stop(self) -> None:
        self.stop_event.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.app.close()


class Echo:
    """The smallest aiogram 3 bot: one handler answers every message with its text; long polling."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    async def start(self) -> None:
        from aiogram import Bot, Dispatcher
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer
        from aiogram.types import Message

        self.bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(self.args.api)))
        self.dp = Dispatcher()

        @self.dp.message()
        async def echo(message: Message) -> None:
            await message.answer(message.text or "?")

        self.task = asyncio.create_task(self.dp.start_polling(self.bot, handle_signals=False, polling_timeout=25))

    async def settle(self, timeout: float) -> bool:
        return True

    def internals(self) -> dict[str, Any]:
        return {}

    async def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # polling not started (yet)
            await asyncio.wait_for(self.dp.stop_polling(), 5)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        await self.bot.session.close()


class Memory:
    """tracemalloc (after the "trace" command): the net growth of live Python memory between two
    marks, each taken after a full garbage collection. Only aggregated sizes per source line are
    kept between the marks, so the measurement does not measure itself."""

    IGNORE = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__),
              tracemalloc.Filter(False, "<frozen importlib._bootstrap>"), tracemalloc.Filter(False, "<unknown>"))

    last: tracemalloc.Snapshot | None = None

    def __init__(self) -> None:
        self.before: dict[tuple[str, int], tuple[int, int]] | None = None

    @staticmethod
    def _clear_bounded_caches() -> None:
        """aiogram's `Update.event_type` is an lru_cache(128) keyed by the update: it keeps the last
        128 updates alive, whichever they were. Bounded, so not per conversation; cleared before
        both marks so that it does not blur the difference."""
        with contextlib.suppress(ImportError, AttributeError):
            from aiogram.types import Update

            Update.event_type.fget.cache_clear()

    @staticmethod
    def _sizes() -> dict[tuple[str, int], tuple[int, int]]:
        Memory._clear_bounded_caches()
        gc.collect()
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces(Memory.IGNORE)
        sizes = {(stat.traceback[0].filename, stat.traceback[0].lineno): (stat.size, stat.count)
                 for stat in snapshot.statistics("lineno")}
        Memory.last = snapshot if tracemalloc.get_traceback_limit() > 1 else None
        del snapshot
        gc.collect()
        return sizes

    @staticmethod
    def _callers(filename: str, lineno: int) -> list[str]:
        """With BENCH_TRACE_FRAMES > 1 (debugging): the call chain that allocated most at a site."""
        if Memory.last is None:
            return []
        here = Memory.last.filter_traces([tracemalloc.Filter(True, filename, lineno)])
        stats = here.statistics("traceback")
        if not stats:
            return []
        return [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in stats[0].traceback][-10:]

    def mark(self) -> dict[str, Any]:
        if not tracemalloc.is_tracing():
            return {"error": "send {\"cmd\": \"trace\"} first"}
        self.before = self._sizes()
        Memory.last = None
        return {"bytes": sum(size for size, _ in self.before.values())}

    def growth(self, top: int = 10) -> dict[str, Any]:
        if self.before is None:
            return {"error": "no mark"}
        after = self._sizes()
        here = Path(__file__).resolve().parent.parent
        diffs = []
        for key in self.before.keys() | after.keys():
            size0, count0 = self.before.get(key, (0, 0))
            size1, count1 = after.get(key, (0, 0))
            if size1 != size0 or count1 != count0:
                name = key[0]
                with contextlib.suppress(ValueError):
                    name = str(Path(name).resolve().relative_to(here))
                name = name.split("site-packages/")[-1].split("lib/python3")[-1]
                diffs.append({"where": f"{name}:{key[1]}", "bytes": size1 - size0, "blocks": count1 - count0,
                              "key": key})
        diffs.sort(key=lambda d: d["bytes"])
        for d in diffs[::-1][:top]:
            if callers := self._callers(*d["key"]):
                d["callers"] = callers
        Memory.last = None
        for d in diffs:
            del d["key"]
        return {"bytes": sum(d["bytes"] for d in diffs), "blocks": sum(d["blocks"] for d in diffs),
                "top": diffs[::-1][:top], "bottom": [d for d in diffs[:top] if d["bytes"] < 0]}


def start_profile(path: str) -> Any:
    """Profile the event-loop thread until the returned function is called, which writes `path`:
    a pyinstrument text or HTML report for *.txt / *.html (if pyinstrument is installed), else
    cProfile statistics (pstats) measured in CPU time of that thread."""
    if path.endswith((".txt", ".html")):
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.0005, async_mode="disabled")
        sampler.start()

        def stop_sampler() -> None:
            sampler.stop()
            text = sampler.output_html() if path.endswith(".html") else sampler.output_text(unicode=True, show_all=False)
            Path(path).write_text(text)
        return stop_sampler
    profile = cProfile.Profile(time.thread_time)
    profile.enable()

    def stop_profile() -> None:
        profile.disable()
        profile.dump_stats(path)
    return stop_profile


async def serve(args: argparse.Namespace) -> None:
    bot: Oberih | Echo = Oberih(args) if args.kind == "oberih" else Echo(args)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    memory, profile = Memory(), None

    def say(**answer: Any) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    gc.callbacks.append(_time_gc)
    count_calls()
    await bot.start()
    say(ready=True, gc_frozen=gc.get_freeze_count(), pid=os.getpid(), **usage())
    while line := await reader.readline():
        command = json.loads(line)
        name = command["cmd"]
        if name == "usage":
            if command.get("reset_longest_gc"):  # the window starts: its own longest pauses from now on
                GC["longest"] = [0.0, 0.0, 0.0]
            say(**usage(), **bot.internals())
        elif name == "types":  # live objects by type (diagnosing a memory figure)
            gc.collect()
            from collections import Counter

            say(types=dict(Counter(type(o).__qualname__ for o in gc.get_objects()).most_common(400)))
        elif name == "holders":  # what keeps objects of a type alive (diagnosing a memory figure)
            gc.collect()
            wanted = [o for o in gc.get_objects() if type(o).__qualname__ == command["type"]][:3]
            chains: list[list[str]] = []
            for obj in wanted:
                chain: list[str] = []
                current, seen = obj, {id(wanted), id(chains), id(chain)}
                for _ in range(command.get("depth", 8)):
                    refs = [r for r in gc.get_referrers(current)
                            if id(r) not in seen and type(r).__name__ not in ("frame", "list_iterator")]
                    seen.add(id(refs))
                    if not refs:
                        break
                    current = refs[0]
                    seen.add(id(current))
                    desc = type(current).__qualname__
                    if isinstance(current, dict):
                        desc += f" keys={list(current)[:4]}"
                    elif isinstance(current, (list, tuple)):
                        desc += f" len={len(current)}"
                    chain.append(desc)
                chains.append(chain)
            say(chains=[[c[:160] for c in chain] for chain in chains])
        elif name == "collect":  # how long one full garbage collection takes now
            started = time.perf_counter()
            found = gc.collect()
            say(seconds=time.perf_counter() - started, unreachable=found, objects=len(gc.get_objects()))
        elif name == "settle":
            quiet = await bot.settle(command.get("timeout", 15.0))
            say(quiet=quiet, **usage())
        elif name == "trace":
            # From now on every allocation is traced. BENCH_TRACE_FRAMES > 1 (slower) also shows
            # where the largest growth sites were called from.
            tracemalloc.start(int(os.environ.get("BENCH_TRACE_FRAMES", "1")))
            say(ok=True)
        elif name == "untrace":
            tracemalloc.stop()
            say(ok=True)
        elif name == "mark":
            marked = memory.mark()
            say(**marked, **usage())  # rss_kb measured after the mark's snapshot is gone
        elif name == "growth":
            say(**memory.growth(), **usage(), **bot.internals())
        elif name == "profile_on":
            profile = start_profile(command["path"])
            say(ok=True)
        elif name == "profile_off":
            if profile is not None:
                profile()
            say(ok=profile is not None)
            profile = None
        elif name == "stop":
            await bot.stop()
            say(stopped=True, **usage())
            return
        else:
            say(error=f"unknown command {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["oberih", "echo"])
    parser.add_argument("--api", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--database")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.kind == "oberih":
        from bot.logs import setup_logging

        setup_logging("WARNING")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
