"""Outbox items as transport calls: what each kind of item says, to whom, through which channel.

The courier renders (texts in the right language, cards, labels) and records what a send created
(a topic, a card: at once, so that a retry never repeats it); the channel's transport only sends.
"""
from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import partial

from bot.delivery.contract import Sent
from bot.delivery.topics import CaseTopics
from bot.limits import Limits
from bot.staff_chats import StaffChats, route_of
from bot.transport import Address, Failure, Rows, SendError, StaffFile, Transport, send_long_text
from dialogs.engine import Engine
from dialogs.model import Button, MediaKind, MediaRef
from storage import Database, Kind, OutboxItem, Target

VIBER_ADVICE_KEY = "exit.viber_advice"  # where messages cannot be deleted: how to hide the chat
FILE_UNAVAILABLE_KEY = "notice.viber_file_unavailable"
CHART_FILE = "oberih-statistics.png"


class Courier:
    """The delivery worker's sender for every channel (bot/delivery/contract.py `ItemSender`)."""

    def __init__(self, db: Database, engine: Engine, transports: Mapping[str, Transport], chats: StaffChats,
                 owner: str | None = None) -> None:
        """`owner`: this process's name (bot/heartbeat.py), on the topics it asks Telegram for."""
        self.engine, self.transports, self.chats = engine, transports, chats
        self.topics = CaseTopics(db, engine, chats, owner)

    async def send(self, item: OutboxItem, limits: Limits) -> Sent | None:
        transport = self.transports[item.channel]
        if item.target is Target.CHILD:
            return await self._to_child(transport, item, limits)
        try:
            return await self._to_staff(transport, item, limits)
        except SendError as error:
            if error.failure is Failure.CHAT_MOVED and error.new_chat_id is not None:
                chat = self.chats.of(item.target, route_of(item.lane))
                if chat is not None:
                    self.chats.move(chat, error.new_chat_id)  # the next attempt goes to the new id
            raise

    async def _to_child(self, transport: Transport, item: OutboxItem, limits: Limits) -> Sent | None:
        payload = item.payload
        # A last message after the child erased their data carries its own address; any other comes
        # with the claim (Outbox.ready reads it from the conversation), so no transaction here.
        to = Address.of_child(payload.get("address") or item.address)
        if to is None:
            raise SendError(Failure.RECIPIENT_GONE, "the child deleted their data")
        lang = payload.get("lang") or self.engine.default_language
        if item.kind is Kind.DELETE_MESSAGES:
            if transport.can_delete:
                await transport.delete_messages(to, sorted(set(payload["message_ids"])))
                return None
            # The platform cannot delete messages: tell the child how to hide the chat themselves.
            return Sent(tuple(await send_long_text(transport, to, self.engine.say(lang, VIBER_ADVICE_KEY),
                                                   pace=partial(limits.acquire_extra, item))))
        if item.kind is Kind.STAFF_COPY:
            chat = self.chats.of(Target(payload["chat"]), payload.get("region"))
            if chat is None:
                raise SendError(Failure.REFUSED, "the staff chat is not configured")
            media = MediaRef(MediaKind(payload["kind"]), payload.get("file_ref", ""), payload["message_id"])
            ids = await transport.pass_on(to, StaffFile(chat, payload["message_id"], media), payload.get("caption") or "",
                                          self.engine.say(lang, FILE_UNAVAILABLE_KEY), partial(limits.acquire_extra, item))
            return Sent(tuple(ids))
        if item.kind in (Kind.SAY, Kind.STAFF_TEXT):
            ids = await send_long_text(transport, to, payload["text"], _rows(payload.get("buttons")),
                                       pace=partial(limits.acquire_extra, item))
            return Sent(tuple(ids))
        raise SendError(Failure.REFUSED, f"unknown kind {item.kind} for a child")

    async def _to_staff(self, transport: Transport, item: OutboxItem, limits: Limits) -> Sent | None:
        chat = self.chats.of(item.target, route_of(item.lane))  # a region's own chat, or the default one
        if chat is None:
            return None  # police chat not configured: nothing to deliver
        if item.kind is Kind.DELETE_TOPIC:
            await transport.delete_topic(chat, item.payload["topic_id"])
            return None
        if item.kind is Kind.GENERAL_PHOTO:  # the Monday figures (bot/statistics/report.py)
            caption, photo = item.payload["caption"], item.payload.get("photo")
            if photo is None:
                return Sent(tuple(await send_long_text(transport, Address(chat), caption, pace=partial(limits.acquire_extra, item))))
            return Sent(tuple(await transport.send_picture(Address(chat), base64.b64decode(photo), CHART_FILE, caption)))
        if item.kind is Kind.GENERAL:
            text = self.engine.say(self.engine.default_language, item.payload["key"], **item.payload.get("slots", {}))
            return Sent(tuple(await send_long_text(transport, Address(chat), text, protect=True,
                                                   pace=partial(limits.acquire_extra, item))))
        return await self.topics.send(transport, item, chat, limits)


def _rows(stored: list | None) -> Rows:
    """Button rows as queued ([[label, payload], …] per row) back as Button rows."""
    return tuple(tuple(Button(label, data) for label, data in row) for row in stored or ())
