"""Several real bot processes on one PostgreSQL database, in webhook mode, behind a round-robin proxy.

Used by tests/test_several_processes.py (short) and `python -m bench --chaos` (long). The pieces:

* `fresh_postgres()`: a new, empty database on the local server (None, with the reason, if there is none).
* `BotCluster`: `size` processes of `python run_bot.py`, each on a port of its own, sharing one data
  directory (so one key set) and the database; each can be killed with SIGKILL and started again.
* The proxy (aiohttp, in this process): each request goes to the next live process in turn; one
  whose connection fails is passed over, and if none answers, 502.
* The webhook deliverer plays Telegram: the fake's updates are posted to the proxy one by one, in
  order, each again until it is answered 200 (as Telegram retries a webhook).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.telegram_api import FakeTelegram
from tests.support import ADMIN, OPERATOR, TEST_CONTENT, TOKEN

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("OBERIH_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SECRET = "several-processes-webhook-secret-0123456789"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HOOK_PATH = "/telegram/hook"
START_TIMEOUT = 60.0


@contextlib.asynccontextmanager
async def fresh_postgres() -> AsyncIterator[tuple[str | None, str]]:
    """(URL of a new empty database, "") or (None, why there is none); the database is dropped after."""
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5})
    name = f"oberih_cluster_{uuid.uuid4().hex[:12]}"
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - any failure to connect means "no server here"
        await admin.dispose()
        yield None, f"PostgreSQL does not answer at {make_url(POSTGRES_URL).render_as_string()}: {error!r}"
        return
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False), ""
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Node:
    """One bot process: its port, its log files, its process while it runs."""

    def __init__(self, index: int, port: int) -> None:
        self.index, self.port, self.runs = index, port, 0
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class BotCluster:
    def __init__(self, tg: FakeTelegram, database_url: str, data_dir: Path, size: int = 3,
                 env: dict[str, str] | None = None) -> None:
        self.tg, self.data_dir = tg, data_dir
        self.nodes = [Node(i, _free_port()) for i in range(size)]
        ours = ("TELEGRAM_", "VIBER_", "OPERATOR_", "POLICE_", "ADMIN_", "DATABASE_", "DATA_", "ID_PEPPER",
                "RATE_", "WEB_", "DEFAULT_LANGUAGE", "LOG_LEVEL", "KEYS_DIR", "METRICS_TOKEN")
        self.env = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
        self.env.update(
            TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=tg.base_url, OPERATOR_CHAT_ID=str(OPERATOR),
            ADMIN_IDS=str(ADMIN), DATA_DIR=str(data_dir), DATABASE_URL=database_url,
            TELEGRAM_WEBHOOK_URL=f"https://bot.example.org{HOOK_PATH}", TELEGRAM_WEBHOOK_SECRET=SECRET,
            DEFAULT_LANGUAGE="en", RATE_GLOBAL_PER_SECOND="1000", RATE_CHAT_PER_SECOND="1000",
            RATE_GROUP_PER_MINUTE="100000", CHILD_MESSAGES_PER_MINUTE="1000", LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1", CONTENT_DIR=str(TEST_CONTENT),
            DATA_KEY=Fernet.generate_key().decode(), ID_PEPPER=secrets.token_urlsafe(32),  # one set for all
        )
        self.env.update(env or {})
        self.kills = 0
        self._turn = 0
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.proxy_port = 0
        self.delivered = 0  # updates answered 200
        self.redelivered = 0  # posts of an update that had to be made again (no process answered 200)
        self._deliverer: asyncio.Task[None] | None = None

    # -- the processes -----------------------------------------------------------------------------

    async def start(self, node: Node) -> None:
        """Start the process and wait until its /healthz answers (it checked its chats and serves)."""
        assert not node.running
        node.runs += 1
        env = {**self.env, "WEB_PORT": str(node.port)}
        with (self.data_dir / f"bot-{node.index}-{node.runs}.log").open("wb") as log:
            node.proc = await asyncio.create_subprocess_exec(
                sys.executable, "run_bot.py", cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=asyncio.subprocess.STDOUT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        assert self._session is not None
        while loop.time() < deadline:  # another process: nothing to wake us but time
            if node.proc.returncode is not None:
                raise AssertionError(f"bot {node.index} exited ({node.proc.returncode}):\n{self.log(node)[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with self._session.get(f"http://127.0.0.1:{node.port}/healthz",
                                             timeout=aiohttp.ClientTimeout(total=2)) as answer:
                    if answer.status == 200:
                        node.ready = True
                        return
            await asyncio.sleep(0.05)
        raise AssertionError(f"bot {node.index} did not start:\n{self.log(node)[-3000:]}")

    async def kill(self, node: Node) -> None:
        """SIGKILL: nothing is flushed, nothing is marked."""
        assert node.proc is not None and node.running
        node.ready = False
        node.proc.kill()
        await node.proc.wait()
        self.kills += 1

    async def terminate_all(self) -> list[int]:
        codes = []
        for node in self.nodes:
            node.ready = False
            if node.running and node.proc is not None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.proc is not None:
                try:
                    codes.append(await asyncio.wait_for(node.proc.wait(), 15))
                except TimeoutError:
                    node.proc.kill()
                    codes.append(await node.proc.wait())
        return codes

    def log(self, node: Node | None = None) -> str:
        pattern = f"bot-{node.index}-*.log" if node is not None else "bot-*.log"
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.data_dir.glob(pattern)))

    # -- the proxy and the deliverer ---------------------------------------------------------------

    async def __aenter__(self) -> BotCluster:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._proxy)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.proxy_port = _free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.proxy_port).start()
        try:
            await self.start(self.nodes[0])  # the first one migrates the database; then the others
            await asyncio.gather(*(self.start(node) for node in self.nodes[1:]))
        except BaseException:
            await self.__aexit__()
            raise
        self._deliverer = asyncio.create_task(self._deliver(), name="webhook-deliverer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._deliverer is not None:
            self._deliverer.cancel()
            await asyncio.gather(self._deliverer, return_exceptions=True)
        for node in self.nodes:
            if node.running and node.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    node.proc.kill()
                await node.proc.wait()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _proxy(self, request: web.Request) -> web.Response:
        body, headers = await request.read(), {k: v for k, v in request.headers.items() if k == SECRET_HEADER}
        headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
        assert self._session is not None
        for _ in range(len(self.nodes)):
            node = self.nodes[self._turn % len(self.nodes)]
            self._turn += 1
            if not node.ready:
                continue
            try:
                async with self._session.request(request.method, f"http://127.0.0.1:{node.port}{request.path_qs}",
                                                 data=body, headers=headers,
                                                 timeout=aiohttp.ClientTimeout(total=30)) as answer:
                    return web.Response(status=answer.status, body=await answer.read())
            except (aiohttp.ClientError, asyncio.TimeoutError):
                continue  # killed meanwhile: the next one
        return web.Response(status=502)

    async def _deliver(self) -> None:
        """Post every update of the fake to the proxy, in order, each until it is answered 200."""
        assert self._session is not None
        url = f"http://127.0.0.1:{self.proxy_port}{HOOK_PATH}"
        index = 0
        while True:
            await self.tg.wait_for(lambda t: len(t.updates) > index, timeout=3600, what="an update")
            update: dict[str, Any] = self.tg.updates[index]
            while True:
                try:
                    async with self._session.post(url, json=update, headers={SECRET_HEADER: SECRET},
                                                  timeout=aiohttp.ClientTimeout(total=60)) as answer:
                        if answer.status == 200:
                            break
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                self.redelivered += 1
                await asyncio.sleep(0.05)  # as Telegram: again, a moment later
            self.delivered += 1
            index += 1

    async def chaos(self, stop: asyncio.Event, pause: tuple[float, float], seed: int = 18,
                    limit: int | None = None) -> None:
        """Until `stop` (or `limit` kills): after a random pause, kill a random serving process and
        start it again in the background; at least one process serves at any time."""
        import random

        rng, restarts = random.Random(seed), []
        try:
            while not stop.is_set() and (limit is None or self.kills < limit):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), rng.uniform(*pause))
                serving = [node for node in self.nodes if node.ready]
                if stop.is_set() or len(serving) < 2:
                    continue
                node = rng.choice(serving)
                await self.kill(node)
                restarts.append(asyncio.create_task(self.start(node)))
        finally:
            await asyncio.gather(*restarts)
