"""Running a built bot: check the world, serve the web routes, start every loop, and stop gracefully."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from app.build import FLUSH_SECONDS, Service
from bot.delivery.openings import sweep_openings
from bot.scheduler import start_scheduler
from bot.web import build_web_app

log = logging.getLogger(__name__)


async def serve(service: Service, stop: asyncio.Event) -> None:
    """Start every loop, wait for `stop`, then stop gracefully within a few seconds."""
    settings, channels = service.settings, list(service.channels.values())
    worker_stop, loops_stop, beat_stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
    for channel in channels:
        await channel.check()
    heartbeat = service.heartbeat
    if heartbeat is not None:  # before anything claims: on SQLite, what a killed process held is released
        await heartbeat.start()
        service.tasks.append(asyncio.create_task(heartbeat.run(beat_stop), name="heartbeat"))
    routes = [route for channel in channels for route in channel.routes(service.inbox)]

    def loops_alive() -> bool:
        return all(not task.done() for task in service.tasks) and all(channel.alive() for channel in channels)

    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    service.runner = web.AppRunner(build_web_app(service.db, service.metrics, loops_alive, routes, token,
                                                 problems=service.worker.health.problems),
                                   access_log=None)
    await service.runner.setup()
    await web.TCPSite(service.runner, settings.web_host, settings.web_port).start()
    for channel in channels:  # after the web server is up: Viber calls its webhook back at once
        service.tasks += await channel.start(service.inbox, loops_stop)
    await sweep_openings(service.db, service.outbox)  # topics a crash left unrecorded: adopted or deleted
    inbox_task = asyncio.create_task(service.inbox.run(loops_stop), name="inbox")
    worker_task = asyncio.create_task(service.worker.run(worker_stop), name="delivery")
    service.tasks += [inbox_task, worker_task]
    scheduler = start_scheduler(service.sweeps)
    log.info("started", extra={"channels": [channel.name.value for channel in channels],
                               "webhook": bool(settings.telegram_webhook_url)})
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        scheduler.shutdown(wait=False)
        loops_stop.set()
        service.inbox.wake.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(inbox_task, timeout=FLUSH_SECONDS)  # in-flight handlers finish
        worker_stop.set()
        service.worker.nudge()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(worker_task, timeout=1.0)
        await service.worker.flush(FLUSH_SECONDS)
        beat_stop.set()  # beating until here: what the flush still sends stays this process's
        if heartbeat is not None:
            await heartbeat.gone()
        log.info("stopped")
