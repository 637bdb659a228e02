"""The Viber channel: a signed webhook into the inbox, the inbox handler, and the Viber transport.

Viber pushes every event to one webhook and signs the raw body with the bot's auth token
(X-Viber-Content-Signature: hex HMAC-SHA256). A child's events are written to the durable inbox
and answered 200 only after that commit; the inbox processor later calls `handle` inside one
transaction, where the child's message becomes an engine event exactly like a Telegram one.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from bot.channel import Route
from bot.conversation import Child, ConversationService
from bot.inbox import InboxProcessor
from bot.privacy import inbox_lane
from bot.settings import Settings
from bot.storage_watch import StorageWatch
from dialogs.engine import Engine
from handlers.viber.api import ViberApi
from handlers.viber.convert import message_event
from handlers.viber.media import MediaStore
from handlers.viber.render import welcome_body
from handlers.viber.transport import FetchFile, ViberTransport
from storage import ChannelName, Database, Transaction

log = logging.getLogger(__name__)

CHANNEL = ChannelName.VIBER
SIGNATURE_HEADER = "X-Viber-Content-Signature"
STORED_EVENTS = frozenset({"message", "subscribed", "unsubscribed"})
# Callbacks asked for at set_webhook ("message" always comes); delivered/seen/failed are not needed.
EVENT_TYPES = ["subscribed", "unsubscribed", "conversation_started"]
MESSAGE_FIELDS = ("type", "text", "media")  # all the engine needs; names, phones, places are not kept
MAX_EXTERNAL_ID = 128  # the inbox's column


class BadEvent(ValueError):
    """A signed body that is not a Viber event we can read."""


def make_transport(settings: Settings, fetch_file: FetchFile | None) -> ViberTransport:
    """The Viber transport for the configured bot; `fetch_file` gets counsellors' Telegram files."""
    api = ViberApi(settings.viber_auth_token.get_secret_value(), settings.viber_bot_name, settings.viber_api_url)
    return ViberTransport(api, MediaStore(settings.viber_webhook_url), fetch_file)


class ViberChannel:
    name = CHANNEL

    def __init__(self, settings: Settings, transport: ViberTransport, db: Database, engine: Engine,
                 conversations: ConversationService, pseudonym: Callable[[str, Any], str]) -> None:
        self.settings, self.transport, self.db, self.engine = settings, transport, db, engine
        self.conversations, self.pseudonym = conversations, pseudonym
        self.api, self.media = transport.api, transport.media
        self._secret = settings.viber_auth_token.get_secret_value().encode()
        self._inbox_wake: asyncio.Event | None = None
        self._storage = StorageWatch()  # a full disk: said once

    # -- start and stop ---------------------------------------------------------------------------

    async def check(self) -> None:
        return None  # Viber has nothing to check before its webhook is set (at start)

    def routes(self, inbox: InboxProcessor) -> list[Route]:
        """The webhook, and the one-time media files Viber fetches."""
        self._inbox_wake = inbox.wake
        path, handler = self.media.route
        return [("POST", urlparse(self.settings.viber_webhook_url).path or "/", self.webhook), ("GET", path, handler)]

    async def start(self, inbox: InboxProcessor, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        """Viber calls the webhook back (event "webhook") before it answers: the server must be up."""
        events = await asyncio.to_thread(self.api.set_webhook, self.settings.viber_webhook_url, EVENT_TYPES)
        log.info("viber webhook set", extra={"events": events})
        return []

    def alive(self) -> bool:
        return True

    async def close(self) -> None:
        self.api.close()

    # -- inbound ----------------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        given = request.headers.get(SIGNATURE_HEADER, "").strip().lower().encode()
        expected = hmac.new(self._secret, body, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(given, expected):
            log.warning("viber webhook with a bad signature refused")
            return web.Response(status=403)
        try:
            data = _object(json.loads(body))
            event = _text(data, "event")
            if event == "conversation_started":
                return web.json_response(self._welcome(data))
            if event not in STORED_EVENTS:
                return web.Response()  # webhook check, delivered, seen, failed, or a new kind: nothing to do
            external_id, payload = _slim(event, data)
        except (ValueError, KeyError, TypeError, RecursionError):  # BadEvent; json's (bad UTF-8, deep nesting)
            log.warning("viber webhook with an unreadable body refused")
            return web.Response(status=400)
        lane = inbox_lane(CHANNEL, payload["user_id"], self.pseudonym)
        try:
            async with self.db.transaction() as tx:
                await tx.inbox.add(CHANNEL, external_id, lane, payload)  # a redelivered token is ignored
        except Exception as error:
            if not self._storage.failed(error):
                raise
            return web.Response(status=503)  # not stored, so not acknowledged: Viber sends it again
        self._storage.stored()
        if self._inbox_wake is not None:
            self._inbox_wake.set()
        return web.Response()  # 200 only after the event is committed

    def _welcome(self, data: dict[str, Any]) -> dict[str, Any]:
        lang = self.engine.new_state(_text(_object(data.get("user")), "language", required=False)).lang
        command = "/menu" if "menu" in self.engine.content.commands else "/start"  # the welcome is said here
        return welcome_body(self.settings.viber_bot_name, self.engine.say(lang, "welcome.text"),
                            self.engine.say(lang, "common.continue"), command)

    # -- the inbox processor's handler ------------------------------------------------------------

    async def handle(self, tx: Transaction, payload: dict[str, Any]) -> None:
        event, user_id = payload["event"], payload["user_id"]
        if event == "message":
            incoming = message_event(payload["message"], payload.get("language"))
            # No message id: Viber cannot delete a child's message, so there is nothing to remember.
            await self.conversations.handle(tx, Child(CHANNEL, user_id, {"viber_id": user_id}), incoming)
        elif event == "subscribed":
            log.info("viber child subscribed")
        elif event == "unsubscribed":
            await self._forget_address(tx, user_id)

    async def _forget_address(self, tx: Transaction, user_id: str) -> None:
        """The child left the chat: keep the conversation and its case, but never write to them again."""
        key = self.pseudonym(CHANNEL, user_id)
        conversation = await tx.conversations.get(key)
        if conversation is not None and conversation.address is not None:
            await tx.conversations.save(key, conversation.channel, conversation.state, None,
                                        expected_version=conversation.version)
        log.info("viber child unsubscribed", extra={"known": conversation is not None})


def _slim(event: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(dedup id, what the inbox keeps): only what `handle` reads — no name, avatar or country.
    Raises BadEvent unless every field read has the type Viber documents: nothing else is stored."""
    language = None
    slim: dict[str, Any] = {}
    if event == "message":
        sender, message = _object(data.get("sender")), _object(data.get("message"))
        user_id, language = _text(sender, "id"), _text(sender, "language", required=False)
        _text(message, "type")
        slim["message"] = {name: _text(message, name, required=False) for name in MESSAGE_FIELDS if name in message}
    elif event == "subscribed":
        user_id = _text(_object(data.get("user")), "id")
    else:
        user_id = _text(data, "user_id")
    token = data.get("message_token")
    if token is None:
        external_id = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    elif isinstance(token, (int, str)) and not isinstance(token, bool) and 0 < len(str(token)) <= MAX_EXTERNAL_ID:
        external_id = str(token)
    else:
        raise BadEvent("unreadable message_token")
    return external_id, {"event": event, "user_id": user_id, "language": language, **slim}


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadEvent("not an object")
    return value


def _text(fields: dict[str, Any], name: str, required: bool = True) -> Any:
    """A string field (non-empty if required); None if it is optional and absent."""
    value = fields.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise BadEvent(f"{name} is not text")
    return value
