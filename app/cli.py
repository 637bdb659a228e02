"""The command line: `python run_bot.py [run|console|check-content|diagram|stats]`."""
from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys

from app.build import build
from app.run import serve
from bot.channel import StartupError
from bot.logs import setup_logging
from bot.settings import Settings, SettingsError, load_settings
from bot.statistics.harms import check_statistics_content
from dialogs.content import ContentInvalid
from dialogs.validate import check_content

NO_TOKEN = (
    "No TELEGRAM_BOT_TOKEN is set, so Oberih starts the local console: the same dialog, in this terminal.\n"
    "To run the real bot, set TELEGRAM_BOT_TOKEN and OPERATOR_CHAT_ID (see README.md).\n"
)
COMMANDS = ("run", "console", "check-content", "diagram")
SETTLE_SECONDS = 10.0  # from built to the first garbage collection (_settle)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stats"]:  # its own options (app/statistics.py)
        gc.enable()
        from app.statistics import main as statistics

        return statistics(argv[1:])
    parser = argparse.ArgumentParser(description="Oberih: a safe reporting bot for children")
    parser.add_argument("command", nargs="?", default="run", choices=COMMANDS)
    command = parser.parse_args(argv).command
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    if command == "run" and not settings.telegram_enabled:
        print(NO_TOKEN)
        command = "console"
    if command != "run":
        gc.enable()  # run_bot.py turned collection off: only the bot's start is in a hurry (_serve)
    if command == "check-content":
        return _check(settings)
    if command == "diagram":
        from dialogs.diagram import flow_diagrams
        from dialogs.validate import load_content

        print(flow_diagrams(load_content(settings.content_dir)))
        return 0
    setup_logging(settings.log_level if command == "run" else "WARNING")
    try:
        asyncio.run(_console(settings) if command == "console" else _serve(settings))
    except ContentInvalid as error:
        print(f"Content has mistakes; the bot did not start:\n{error}", file=sys.stderr)
        return 2
    except (StartupError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    return 0


def _check(settings: Settings) -> int:
    errors, warnings = check_content(settings.content_dir, settings.default_language)
    errors += check_statistics_content(settings.content_dir)
    for warning in warnings:
        print(f"warning: {warning}")
    for error in errors:
        print(f"error: {error}")
    print(f"{len(errors)} errors, {len(warnings)} warnings")
    return 1 if errors else 0


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    gc.disable()  # (already, from run_bot.py) building imports aiogram: collections meanwhile find nothing
    settled: asyncio.TimerHandle | None = None
    try:
        service = await build(settings)
        # The collection waits until the start is over and what waited meanwhile is sent.
        settled = loop.call_later(SETTLE_SECONDS, _settle)
        loop.add_signal_handler(signal.SIGHUP, service.reload_content)  # `kill -HUP` reloads content/
        try:
            await serve(service, stop)
        finally:
            await service.close()
    finally:
        if settled is not None:
            settled.cancel()
        gc.enable()


def _settle() -> None:
    # Everything built at start lives as long as the process: keep it out of every garbage collection
    # (a full collection over it pauses the bot for a quarter second; bench/README.md).
    gc.collect()
    gc.freeze()
    gc.enable()


async def _console(settings: Settings) -> None:
    from handlers.console import ConsoleTransport, run_console

    # Its own database by default, so trial reports never mix with a real deployment's cases.
    local = settings.model_copy(update={
        "database_url": settings.database_url or f"sqlite:///{settings.data_dir / 'console.db'}"})
    transport = ConsoleTransport(sys.stdout)
    service = await build(local, console=transport)
    try:
        await run_console(service.db, service.conversations, service.casework, service.worker, transport)
    finally:
        await service.close()
