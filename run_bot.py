"""Oberih's one entry point: `python run_bot.py [run|console|check-content|diagram|stats]`."""
from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys

from bot.app import build_app, run_app
from bot.checks import StartupError
from bot.logs import setup_logging
from bot.settings import SettingsError, load_settings
from dialogs.content import ContentInvalid
from bot.statistics.harms import check_statistics_content
from dialogs.validate import check_content

NO_TOKEN = (
    "No TELEGRAM_BOT_TOKEN is set, so Oberih starts the local console: the same dialog, in this terminal.\n"
    "To run the real bot, set TELEGRAM_BOT_TOKEN and OPERATOR_CHAT_ID (see README.md).\n"
)


def main() -> int:
    if sys.argv[1:2] == ["stats"]:  # its own options: bot/statistics/cli.py
        from bot.statistics.cli import main as statistics

        return statistics(sys.argv[2:])
    parser = argparse.ArgumentParser(description="Oberih: a safe reporting bot for children")
    parser.add_argument("command", nargs="?", default="run", choices=["run", "console", "check-content", "diagram"])
    command = parser.parse_args().command
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    if command == "check-content":
        return _check(settings)
    if command == "diagram":
        from dialogs.diagram import flow_diagrams
        from dialogs.validate import load_content

        print(flow_diagrams(load_content(settings.content_dir)))
        return 0
    setup_logging(settings.log_level if command == "run" and settings.telegram_enabled else "WARNING")
    if command == "run" and not settings.telegram_enabled:
        print(NO_TOKEN)
        command = "console"
    try:
        asyncio.run(_console(settings) if command == "console" else _serve(settings))
    except ContentInvalid as error:
        print(f"Content has mistakes; the bot did not start:\n{error}", file=sys.stderr)
        return 2
    except (StartupError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    return 0


def _check(settings) -> int:
    errors, warnings = check_content(settings.content_dir)
    errors += check_statistics_content(settings.content_dir)
    for warning in warnings:
        print(f"warning: {warning}")
    for error in errors:
        print(f"error: {error}")
    print(f"{len(errors)} errors, {len(warnings)} warnings")
    return 1 if errors else 0


async def _serve(settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = await build_app(settings)
    # Everything built so far lives as long as the process: keep it out of every garbage collection
    # (a full collection over it pauses the bot for a quarter second; bench/README.md).
    gc.collect()
    gc.freeze()
    loop.add_signal_handler(signal.SIGHUP, app.reload_content)  # `kill -HUP` reloads content/
    try:
        await run_app(app, stop)
    finally:
        await app.close()


async def _console(settings) -> None:
    from handlers.console import run_console

    # No Telegram behind the console: its limits would only slow the terminal down.
    # Its own database by default, so trial reports never mix with a real deployment's cases.
    local = settings.model_copy(update={
        "rate_chat_per_second": 1000, "rate_global_per_second": 1000, "rate_group_per_minute": 100000,
        "telegram_bot_token": None, "viber_auth_token": None,
        "database_url": settings.database_url or f"sqlite:///{settings.data_dir / 'console.db'}",
    })
    app = await build_app(local, staff_channel="console")
    try:
        await run_console(app)
    finally:
        await app.close()


if __name__ == "__main__":
    sys.exit(main())
