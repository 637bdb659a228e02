"""Files a counsellor sends from Telegram, served once to Viber under an unguessable URL.

Viber cannot take a Telegram file id: it downloads a picture or file from a public URL. The sender
fetches the file with the app's Telegram bot and puts it here; Viber's fetch of
`<VIBER_WEBHOOK_URL's origin>/media/<token>` takes it out again. Nothing is written to disk, and a
file nobody fetched is dropped after 15 minutes.
"""
from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from aiohttp import web

TTL_SECONDS = 15 * 60
MAX_BYTES = 200 * 1024 * 1024  # held in memory at most; the oldest files go first
ROUTE = "/media/{token}"
# (magic bytes, extension, content type) of what counsellors usually send
KINDS = ((b"\xff\xd8\xff", "jpg", "image/jpeg"), (b"\x89PNG", "png", "image/png"), (b"GIF8", "gif", "image/gif"),
         (b"%PDF", "pdf", "application/pdf"), (b"PK\x03\x04", "zip", "application/zip"))


@dataclass(frozen=True, slots=True)
class _File:
    data: bytes
    content_type: str
    expires: float


def describe(data: bytes) -> tuple[str, str]:
    """A file extension and content type guessed from the first bytes."""
    return next(((ext, ctype) for magic, ext, ctype in KINDS if data.startswith(magic)),
                ("bin", "application/octet-stream"))


class MediaStore:
    def __init__(self, webhook_url: str, clock: Callable[[], float] = time.monotonic) -> None:
        origin = urlparse(webhook_url)
        self.base = f"{origin.scheme}://{origin.netloc}{ROUTE.split('{')[0]}"
        self.clock = clock
        self._files: OrderedDict[str, _File] = OrderedDict()

    @property
    def route(self) -> tuple[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]:
        """(path, GET handler) for the bot's web server."""
        return ROUTE, self.handle

    def put(self, data: bytes, content_type: str) -> tuple[str, str]:
        """Keep a file for one fetch; returns (token, public URL)."""
        self._expire()
        while self._files and sum(len(f.data) for f in self._files.values()) + len(data) > MAX_BYTES:
            self._files.popitem(last=False)
        token = secrets.token_urlsafe(32)
        self._files[token] = _File(data, content_type, self.clock() + TTL_SECONDS)
        return token, self.base + token

    def discard(self, token: str) -> None:
        self._files.pop(token, None)

    def __len__(self) -> int:
        self._expire()
        return len(self._files)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self._expire()
        token = request.match_info.get("token", "")
        if request.method == "HEAD":  # a probe must not use up the one fetch
            found = self._files.get(token)
        else:
            found = self._files.pop(token, None)
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found.data, content_type=found.content_type,
                            headers={"Cache-Control": "no-store"})

    def _expire(self) -> None:
        now = self.clock()
        for token in [t for t, f in self._files.items() if f.expires <= now]:
            del self._files[token]
