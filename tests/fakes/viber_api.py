"""A fake Viber REST bot API for the test-suite, plus Viber-shaped, signed webhook bodies.

It speaks real HTTP on 127.0.0.1 (port 0), so viberbot's blocking `requests` calls run unmodified::

    async with FakeViber(auth_token="tok") as viber:
        settings = load_settings(VIBER_API_URL=viber.base_url, ...)
        body, headers = signed_event("tok", text_event("user1", "hi"))
        await viber.wait_for(lambda v: v.messages_to("user1"))

Like Viber, `set_webhook` first posts a signed {"event": "webhook"} to the URL and fails unless it
answers 200, and a picture or file message makes the server download its `media` URL. Every request
is recorded; tests wait with `wait_for` (an asyncio.Condition notified on each change), never sleep.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

__all__ = ["FakeViber", "ViberCall", "event", "message_event", "signed_event", "text_event", "user"]

TEXT_LIMIT = 7000
MAX_BUTTONS = 24
STATUS_TEXT = {0: "ok", 1: "invalidUrl", 2: "invalidAuthToken", 3: "badData", 4: "missingData",
               5: "receiverNotRegistered", 6: "receiverNotSubscribed", 12: "tooManyRequests"}
_tokens = itertools.count(5_000_000_000_000_000_000)


@dataclass
class ViberCall:
    endpoint: str
    body: dict[str, Any]
    auth_header: str | None  # the X-Viber-Auth-Token header as received
    status: int = 0  # Viber's status answered (HTTP errors: the HTTP code)
    fetched: bytes | None = None  # what the fake downloaded from the message's media URL
    extra: dict[str, Any] = field(default_factory=dict)


def signed_event(auth_token: str, body: dict[str, Any] | bytes) -> tuple[bytes, dict[str, str]]:
    """A webhook body and headers signed as Viber signs them (hex HMAC-SHA256 of the body)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signature = hmac.new(auth_token.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Viber-Content-Signature": signature, "Content-Type": "application/json"}


def event(name: str, **fields: Any) -> dict[str, Any]:
    return {"event": name, "timestamp": int(time.time() * 1000), "chat_hostname": "SN-CHAT-01_",
            "message_token": next(_tokens), **fields}


def user(user_id: str, language: str = "en", name: str = "Child") -> dict[str, Any]:
    return {"id": user_id, "name": name, "avatar": "https://avatar.example/a.jpg", "language": language,
            "country": "UA", "api_version": 10}


def message_event(user_id: str, message: dict[str, Any], language: str = "en") -> dict[str, Any]:
    return event("message", sender=user(user_id, language), message=message, silent=False)


def text_event(user_id: str, text: str, language: str = "en") -> dict[str, Any]:
    return message_event(user_id, {"type": "text", "text": text}, language)


class FakeViber:
    def __init__(self, auth_token: str = "fake-viber-token", host: str = "127.0.0.1") -> None:
        self.auth_token, self.host = auth_token, host
        self.calls: list[ViberCall] = []
        self.unsubscribed: set[str] = set()
        self.webhook: dict[str, Any] | None = None
        self.fetch_media = True
        self._faults: dict[str, list[tuple[str, int]]] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port = 0

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/pa/{endpoint}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeViber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}/pa"

    # -- scripting --------------------------------------------------------------------------------
    def unsubscribe(self, user_id: str) -> None:
        """send_message to this user answers status 6, receiverNotSubscribed."""
        self.unsubscribed.add(user_id)

    def fail_next(self, endpoint: str, n: int = 1, http: int | None = 500, status: int | None = None) -> None:
        """The next n calls of endpoint ("*" = any) answer HTTP `http`, or 200 with Viber `status`."""
        fault = ("status", status) if status is not None else ("http", http or 500)
        self._faults.setdefault(endpoint, []).extend([fault] * n)

    # -- looking --------------------------------------------------------------------------------
    def calls_of(self, endpoint: str) -> list[ViberCall]:
        return [c for c in self.calls if c.endpoint == endpoint]

    def messages_to(self, user_id: str) -> list[dict[str, Any]]:
        """Messages Viber accepted for this user, oldest first."""
        return [c.body for c in self.calls_of("send_message") if c.body.get("receiver") == user_id and c.status == 0]

    def texts_to(self, user_id: str) -> list[str]:
        return [m["text"] for m in self.messages_to(user_id) if m.get("type") == "text"]

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
        """[(Text, ActionBody)] of a message's keyboard."""
        return [(b["Text"], b["ActionBody"]) for b in (message.get("keyboard") or {}).get("Buttons", [])]

    async def wait_for(self, predicate: Callable[[FakeViber], Any], timeout: float = 10.0) -> Any:
        """Wait, woken on every request, until predicate(self) is truthy; return that value."""
        result = None

        def check() -> bool:
            nonlocal result
            result = predicate(self)
            return bool(result)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(check), timeout)
            except TimeoutError:
                recent = "\n  ".join(f"{c.endpoint} {c.status} {c.body}" for c in self.calls[-10:])
                raise TimeoutError(f"FakeViber.wait_for timed out; last calls:\n  {recent}") from None
        return result

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- HTTP -----------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = request.match_info["endpoint"]
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = {}
        call = ViberCall(endpoint, body if isinstance(body, dict) else {}, request.headers.get("X-Viber-Auth-Token"))
        self.calls.append(call)
        try:
            return await self._answer(call)
        finally:
            await self._notify()

    async def _answer(self, call: ViberCall) -> web.StreamResponse:
        faults = self._faults.get(call.endpoint) or self._faults.get("*")
        if faults:
            how, code = faults.pop(0)
            call.status = code
            if how == "http":
                return web.json_response({"error": "injected"}, status=code)
            return self._status(code)
        token = call.auth_header or call.body.get("auth_token")
        if token != self.auth_token:
            return self._status(2, call)
        handler = getattr(self, f"_api_{call.endpoint}", None)
        if handler is None:
            return web.json_response({"error": "not found"}, status=404)
        return await handler(call)

    def _status(self, status: int, call: ViberCall | None = None, **extra: Any) -> web.Response:
        if call is not None:
            call.status = status
        return web.json_response({"status": status, "status_message": STATUS_TEXT.get(status, "generalError"), **extra})

    async def _api_set_webhook(self, call: ViberCall) -> web.Response:
        url = call.body.get("url")
        if url:  # Viber checks the URL with a signed "webhook" event before it answers
            raw, headers = signed_event(self.auth_token, event("webhook"))
            try:
                async with aiohttp.ClientSession() as session, session.post(url, data=raw, headers=headers) as answer:
                    if answer.status != 200:
                        return self._status(1, call)
            except aiohttp.ClientError:
                return self._status(1, call)
        self.webhook = {"url": url, "event_types": call.body.get("event_types")}
        types = call.body.get("event_types") or ["delivered", "seen", "failed", "subscribed", "unsubscribed",
                                                 "conversation_started"]
        return self._status(0, call, event_types=types)

    async def _api_get_account_info(self, call: ViberCall) -> web.Response:
        return self._status(0, call, id="pa:fake", name="Oberih", webhook=(self.webhook or {}).get("url", ""),
                            event_types=(self.webhook or {}).get("event_types") or [], subscribers_count=0)

    async def _api_get_user_details(self, call: ViberCall) -> web.Response:
        user_id = call.body.get("id")
        if not user_id:
            return self._status(4, call)
        return self._status(0, call, user=user(user_id))

    async def _api_send_message(self, call: ViberCall) -> web.Response:
        body = call.body
        receiver, kind = body.get("receiver"), body.get("type")
        if not receiver or not kind or not (body.get("sender") or {}).get("name"):
            return self._status(4, call)
        if receiver in self.unsubscribed:
            return self._status(6, call)
        if kind == "text" and not (isinstance(body.get("text"), str) and 0 < len(body["text"]) <= TEXT_LIMIT):
            return self._status(3, call)
        board = body.get("keyboard")
        if board is not None and not _keyboard_ok(board):
            return self._status(3, call)
        if kind in ("picture", "file", "video"):
            if kind != "picture" and not (body.get("size") and (kind == "video" or body.get("file_name"))):
                return self._status(4, call)
            if self.fetch_media:  # Viber downloads the media from the given URL
                try:
                    async with aiohttp.ClientSession() as session, session.get(body.get("media", "")) as answer:
                        if answer.status != 200:
                            return self._status(3, call)
                        call.fetched = await answer.read()
                except (aiohttp.ClientError, ValueError):
                    return self._status(3, call)
        return self._status(0, call, message_token=next(_tokens), chat_hostname="SN-CHAT-01_")


def _keyboard_ok(board: dict[str, Any]) -> bool:
    buttons = board.get("Buttons")
    if board.get("Type") != "keyboard" or not isinstance(buttons, list) or not 0 < len(buttons) <= MAX_BUTTONS:
        return False
    return all(1 <= b.get("Columns", 6) <= 6 and 1 <= b.get("Rows", 1) <= 2 and b.get("ActionBody")
               and b.get("ActionType", "reply") in ("reply", "open-url", "location-picker", "share-phone", "none")
               for b in buttons)
