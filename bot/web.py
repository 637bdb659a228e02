"""The bot's web server: webhook routes, /healthz and /metrics — nothing else is exposed."""
from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable

from aiohttp import web

from bot.channel import Route
from bot.metrics import Metrics
from storage import Database

# A request a reverse proxy passed on comes from 127.0.0.1 too: these headers tell it from a local one.
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def build_web_app(db: Database, metrics: Metrics, loops_alive: Callable[[], bool], routes: list[Route],
                  metrics_token: str | None = None, problems: Callable[[], list[str]] = list) -> web.Application:
    """`routes`: (method, path, handler) the channels serve (webhooks, Viber's media links).
    `metrics_token`: /metrics wants it as a bearer token; without one, /metrics answers only local requests.
    `problems`: what else makes the bot unhealthy, in words (a staff chat unreachable for 5 minutes)."""
    async def on_health(request: web.Request) -> web.Response:
        database = await db.ping()
        depth = None
        if database:
            async with db.transaction() as tx:
                depth = await tx.outbox.depth()
        trouble = problems()
        healthy = database and loops_alive() and not trouble
        body = {"status": "ok" if healthy else "unhealthy", "database": database, "loops": loops_alive(),
                "outbox_depth": depth, "problems": trouble}
        return web.json_response(body, status=200 if healthy else 503)

    async def on_metrics(request: web.Request) -> web.Response:
        refused = _refused(request, metrics_token)
        if refused is not None:
            return refused
        if await db.ping():
            await metrics.refresh(db)
        return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_get("/healthz", on_health)
    app.router.add_get("/metrics", on_metrics)
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app


def _refused(request: web.Request, token: str | None) -> web.Response | None:
    """None if the request may read /metrics; else the answer that refuses it."""
    if token is not None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
    if _is_loopback(request.remote) and not any(name in request.headers for name in PROXY_HEADERS):
        return None
    return web.Response(status=403, text="set METRICS_TOKEN to read /metrics from another host\n")


def _is_loopback(remote: str | None) -> bool:
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False  # e.g. a Unix socket: no address to trust
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
