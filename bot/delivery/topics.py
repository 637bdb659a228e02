"""A case's items in its staff topic: the card (opening the topic first), its updates, notices,
the child's relayed messages and files.

What a send creates is recorded at once: the topic's id as soon as Telegram made it, the card's id
together with what follows the card (the rest of a long report, the child's files: one item per
message, so a failure after the card retries only what is missing). A topic staff deleted is opened
again with its card; a topic staff closed is reopened while the case is worked on.
"""
from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import timedelta
from functools import partial

from bot.cards import card_buttons, card_text, topic_name
from bot.delivery.contract import Sent
from bot.limits import Limits
from bot.staff_chats import StaffChats, route_of, staff_lane
from bot.transport import Address, Failure, OutgoingFile, Pace, SendError, Transport, send_long_text
from dialogs.engine import Engine
from dialogs.inert import inert
from dialogs.model import MediaRef
from dialogs.render import split_text
from storage import Case, Database, Kind, OutboxItem, Priority, Target

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096  # Telegram's, for the parts that follow a card
ALBUM_LIMIT = 10  # files in one album
CAPTION_LIMIT = 1024
OPENING_WAIT = timedelta(seconds=60)  # an opening younger than this is another worker's request in flight
OPENING_RETRY = 2.0  # seconds until a case's item waiting for another worker's opening tries again


class CaseTopics:
    def __init__(self, db: Database, engine: Engine, chats: StaffChats, owner: str | None = None) -> None:
        self.db, self.engine, self.chats, self.owner = db, engine, chats, owner
        self._locks: weakref.WeakValueDictionary[tuple[int, Target], asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def lang(self) -> str:
        """Staff read the deployment's language (DEFAULT_LANGUAGE)."""
        return self.engine.default_language

    async def send(self, transport: Transport, item: OutboxItem, chat: int, limits: Limits) -> Sent | None:
        case = await self._load(item.payload["case_id"])
        if case is None:
            return None  # purged meanwhile
        if self.chats.route(item.target, case.region) != route_of(item.lane):
            chat = self.chats.of(item.target, case.region) or chat  # queued before /transfer: the case's chat now
        try:
            return await self._item(transport, item, case, chat, limits)
        except SendError as error:
            if error.failure is Failure.TOPIC_CLOSED:
                # Staff closed the topic; a case still being worked on reopens it.
                topic = case.topic(item.target).topic_id
                if topic is not None:
                    await transport.reopen_topic(chat, topic)
                return await self._item(transport, item, case, chat, limits)
            if error.failure is not Failure.TOPIC_GONE:
                raise
        # Staff deleted the topic: open a new one with the card, then send this item there - once, even
        # when several of the case's lanes (its urgent items, its card's edits) find it gone together.
        gone = case.topic(item.target).topic_id
        async with self._opening(case.id, item.target):
            case = await self._load(case.id)
            if case is None:
                return None
            if case.topic(item.target).topic_id == gone:
                log.warning("case topic was deleted; recreating it", extra={"case": case.number})
                async with self.db.transaction() as tx:
                    case = await tx.cases.set_topic(case.id, item.target, topic_id=None, card_message_id=None)
                opened = await self._open(transport, item, case, chat, limits)
                if item.kind in (Kind.CASE_CARD, Kind.CARD_UPDATE):
                    return opened
        case = await self._load(case.id) or case
        return await self._item(transport, item, case, chat, limits)

    async def _item(self, transport: Transport, item: OutboxItem, case: Case, chat: int, limits: Limits) -> Sent | None:
        target = item.target
        if item.kind is Kind.CARD_UPDATE and case.topic(target).card_message_id is None:
            return None  # no card yet: the card, when it is sent, shows the case as it is then
        if item.kind is Kind.CASE_CARD or case.topic(target).topic_id is None:
            async with self._opening(case.id, target):  # one topic, even if two of the case's lanes open it
                case = await self._load(case.id) or case
                opened = await self._open(transport, item, case, chat, limits)
            if item.kind is Kind.CASE_CARD:
                return opened
            case = await self._load(case.id) or case
        topic = case.topic(target)
        to = Address(chat, topic.topic_id)
        payload = item.payload
        if item.kind is Kind.CARD_UPDATE:
            text, _rest = card_text(self.engine, self.lang, case, await self._holder(case))
            await transport.edit_text(to, topic.card_message_id, text, self._buttons(target, case))
            return None
        pace = partial(limits.acquire_extra, item)
        if item.kind is Kind.NOTICE:
            text = self.engine.say(self.lang, payload["key"], **payload.get("slots", {}))
            return Sent(tuple(await send_long_text(transport, to, text, protect=True, pace=pace)))
        if item.kind is Kind.CARD_PART:
            return Sent(tuple(await send_long_text(transport, to, payload["text"], protect=True, pace=pace)))
        if item.kind is Kind.CASE_FILES:
            files = [OutgoingFile(MediaRef.from_dict(media), media.get("name") or "file") for media in payload["files"]]
            return Sent(tuple(await transport.send_files(to, files, protect=True)))
        if item.kind is Kind.RELAY:
            return await self._relay(transport, item, to, pace)
        raise SendError(Failure.REFUSED, f"unknown kind {item.kind} for a staff chat")

    async def _open(self, transport: Transport, item: OutboxItem, case: Case, chat: int, limits: Limits) -> Sent:
        """Topic, then card, each recorded at once so a retry never repeats it (called holding `_opening`)."""
        target = item.target
        if case.topic(target).topic_id is None:
            topic_id, opening = await self._create_topic(transport, case, target, chat)
            try:
                async with self.db.transaction() as tx:  # the case takes its topic: the opening is done
                    case = await tx.cases.set_topic(case.id, target, topic_id=topic_id)
                    await tx.topic_openings.attached(case.id, target)
            except Exception:
                async with self.db.transaction() as tx:  # e.g. the case is gone: the sweep deletes the topic
                    await tx.topic_openings.opened(opening, topic_id)
                raise
            await limits.acquire_extra(item)
        topic = case.topic(target)
        if topic.card_message_id is None:
            text, overflow = card_text(self.engine, self.lang, case, await self._holder(case))
            card = (await transport.send_text(Address(chat, topic.topic_id), text, self._buttons(target, case),
                                              protect=True))[0]
            async with self.db.transaction() as tx:
                case = await tx.cases.set_topic(case.id, target, card_message_id=card)
                follow = [(Kind.CARD_PART, {"text": part}) for part in (split_text(overflow, TEXT_LIMIT) if overflow else ())]
                follow += [(Kind.CASE_FILES, {"files": files}) for files in _file_messages(case)]
                # In the case's own lane (whichever lane opened the topic), right behind what waits there.
                priority = Priority.URGENT if case.urgent else Priority.NORMAL
                route = self.chats.route(target, case.region)
                for kind, payload in follow:
                    lane = staff_lane(target, case.id, route, kind=kind, priority=priority)
                    await tx.outbox.add(target, item.channel, lane, kind, {"case_id": case.id, **payload},
                                        priority=priority, case_id=case.id)
            topic = case.topic(target)
        return Sent((topic.card_message_id,) if topic.card_message_id else (), topic_id=topic.topic_id)

    async def _create_topic(self, transport: Transport, case: Case, target: Target, chat: int) -> tuple[int, int]:
        """A new topic's thread id, and its opening's id. The opening is recorded before Telegram is asked,
        and done when the case takes the topic, right after (or, if it cannot, given the thread id): a
        crash in between leaves a row that the next try (here) or the sweep (bot/delivery/openings.py)
        finds, so no topic is ever lost to a purge. One opening per case and chat at a time: another
        process opening it now is waited for."""
        async with self.db.transaction() as tx:
            opening = await tx.topic_openings.add(case.id, target, chat, self.owner)
            if opening is None:
                found = await tx.topic_openings.current(case.id, target)
                if found is not None and found.thread_id is not None and found.chat == chat:
                    return found.thread_id, found.id  # made before a crash, never attached: adopted
                in_flight = found is not None and tx.now - found.created_at < OPENING_WAIT
                if found is not None and in_flight and not await tx.topic_openings.holder_dead(found):
                    # Another worker is asking Telegram right now: try again in a moment (not an outage).
                    raise SendError(Failure.RATE_LIMITED, "topic being opened", retry_after=OPENING_RETRY)
                if found is not None:  # a request that never got its answer: asked again
                    await tx.topic_openings.restart(found.id, self.owner)
                    opening = found.id
                else:
                    opening = await tx.topic_openings.add(case.id, target, chat, self.owner)
        if opening is None:
            raise SendError(Failure.RATE_LIMITED, "topic being opened", retry_after=OPENING_RETRY)
        try:
            topic_id = await transport.open_topic(chat, topic_name(self.engine, self.lang, case))
        except Exception as error:
            async with self.db.transaction() as tx:
                if isinstance(error, SendError) and error.failure is not Failure.NETWORK:
                    await tx.topic_openings.drop(opening)  # Telegram answered: no topic was made
                else:  # no answer: a topic may have been made, or not; the next try takes over at once
                    await tx.topic_openings.unanswered(opening, tx.now - OPENING_WAIT)
            raise
        return topic_id, opening

    def _opening(self, case_id: int, target: Target) -> asyncio.Lock:
        """The lock held while a case's topic is opened in one staff chat (kept while anyone holds it)."""
        lock = self._locks.get((case_id, target))
        if lock is None:
            lock = self._locks[(case_id, target)] = asyncio.Lock()
        return lock

    async def _relay(self, transport: Transport, item: OutboxItem, to: Address, pace: Pace) -> Sent:
        payload = item.payload
        label = self.engine.say(self.lang, "operator.label.child_edited" if payload.get("edited") else "operator.label.child")
        media = payload.get("media")
        said = inert(payload.get("text") or "")  # links, domains and @handles never live (rule 1)
        if media is None:
            return Sent(tuple(await send_long_text(transport, to, f"{label}\n{said}", protect=True, pace=pace)))
        caption = f"{label}\n{said}".strip()[:CAPTION_LIMIT]
        file = OutgoingFile(MediaRef.from_dict(media), "file")
        return Sent(tuple(await transport.send_files(to, [file], caption, protect=True)))

    def _buttons(self, target: Target, case: Case) -> tuple:
        if target is not Target.OPERATOR:
            return ()  # police read and answer; the case itself is run from the operator chat
        return card_buttons(self.engine, self.lang, case, self.chats.police_enabled)

    async def _holder(self, case: Case) -> str:
        if case.assignee_id is None:
            return "—"
        async with self.db.transaction() as tx:
            member = await tx.staff.get(case.assignee_id)
        return member.alias if member else "Admin"

    async def _load(self, case_id: int) -> Case | None:
        async with self.db.transaction() as tx:
            return await tx.cases.get(case_id)


def _file_messages(case: Case) -> list[list[dict]]:
    """The child's files as messages: screenshots in albums (photos and videos together, documents
    together, at most ten), voice notes and GIFs one by one - never forwarded, each under a neutral
    name numbered through the case ("file-2")."""
    media = list(case.answers.get("media") or [])
    media += [value["voice"] for value in case.answers.values() if isinstance(value, dict) and "voice" in value]
    media = [{**file, "name": f"file-{number}"} for number, file in enumerate(media, 1)]
    messages = []
    for kinds in (("photo", "video"), ("document",)):
        group = [m for m in media if m["kind"] in kinds]
        messages += [group[start:start + ALBUM_LIMIT] for start in range(0, len(group), ALBUM_LIMIT)]
    return messages + [[m] for m in media if m["kind"] in ("voice", "audio", "animation")]
