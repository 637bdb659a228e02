"""The bot's web server: webhook routes, /healthz and /metrics — nothing else is exposed."""
from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from bot.channel import Route
from bot.metrics import Metrics
from storage import Database


def build_web_app(db: Database, metrics: Metrics, loops_alive: Callable[[], bool], routes: list[Route]) -> web.Application:
    """`routes`: (method, path, handler) the channels serve (webhooks, Viber's media links)."""
    async def on_health(request: web.Request) -> web.Response:
        database = await db.ping()
        depth = None
        if database:
            async with db.transaction() as tx:
                depth = await tx.outbox.depth()
        healthy = database and loops_alive()
        body = {"status": "ok" if healthy else "unhealthy", "database": database, "loops": loops_alive(),
                "outbox_depth": depth}
        return web.json_response(body, status=200 if healthy else 503)

    async def on_metrics(request: web.Request) -> web.Response:
        if await db.ping():
            await metrics.refresh(db)
        return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_get("/healthz", on_health)
    app.router.add_get("/metrics", on_metrics)
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app
