"""Outbox items as Bot API calls: children's chats, and case topics in the operator and police chats."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError, TelegramBadRequest, TelegramForbiddenError, TelegramMigrateToChat, TelegramNotFound, TelegramRetryAfter,
)
from aiogram.types import InlineKeyboardMarkup, InputMediaDocument, InputMediaPhoto, InputMediaVideo, LinkPreviewOptions

from bot.delivery import DeliveryError
from bot.outbox import Kind
from bot.statistics.report import GENERAL_PHOTO
from dialogs.engine import Engine
from dialogs.render import split_text
from handlers.telegram import lean_api
from handlers.telegram.cards import card_keyboard, card_text, topic_name
from handlers.telegram.statistics import send_general_photo

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
STAFF_CHAT_RETRY = 60.0  # seconds between tries while a staff chat is unreachable
ADMIN_ALARM_EVERY = 3600.0
ALBUM_LIMIT = 10
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


@dataclass(slots=True)
class StaffChats:
    """The configured staff chats; mutable because Telegram can move a group to a new id."""

    operator: int
    police: int | None = None

    def of(self, target: str) -> int | None:
        return self.operator if target == "operator" else self.police


class TelegramSender:
    def __init__(self, bot: Bot, db: Any, engine: Engine, chats: StaffChats, admin_ids: tuple[int, ...] = ()) -> None:
        self.bot, self.db, self.engine, self.chats, self.admin_ids = bot, db, engine, chats, admin_ids
        self._told_admins: dict[str, float] = {}

    @property
    def lang(self) -> str:
        return self.engine.default_language

    async def send(self, item: Any, limits: Any) -> dict | None:
        try:
            if item.target == "child":
                return await self._to_child(item, limits)
            return await self._to_staff(item, limits)
        except TelegramRetryAfter as error:
            raise DeliveryError("429", retry_after=error.retry_after) from None
        except TelegramMigrateToChat as error:
            # The group became a supergroup with a new id (Telegram's migrate_to_chat_id): follow it.
            if item.target != "child":
                self._move_chat(item.target, error.migrate_to_chat_id)
            raise DeliveryError("chat migrated") from None
        except (TelegramForbiddenError, TelegramBadRequest, TelegramNotFound) as error:
            reason = "blocked" if isinstance(error, TelegramForbiddenError) else _reason(error)
            if item.target == "child":
                raise DeliveryError(reason, permanent=True) from None
            # The bot was removed from a staff chat, or lost its rights: a configuration problem to
            # wait out, never a reason to drop a card. Admins are told; the item waits and retries.
            await self._tell_admins(item.target, reason)
            raise DeliveryError(reason, retry_after=STAFF_CHAT_RETRY) from None

    async def _tell_admins(self, target: str, reason: str) -> None:
        """A private message to each admin, at most once an hour per chat (best effort)."""
        now = time.monotonic()
        if now - self._told_admins.get(target, -ADMIN_ALARM_EVERY) < ADMIN_ALARM_EVERY:
            return
        self._told_admins[target] = now
        log.error("a staff chat is unreachable; deliveries wait", extra={"chat": target, "reason": reason})
        text = self.engine.say(self.lang, "operator.chat_unreachable", role=target, reason=reason)
        for admin in self.admin_ids:
            try:
                await self.bot.send_message(admin, text)
            except TelegramAPIError:
                pass  # the admin never started a private chat with the bot: the log line remains

    def _move_chat(self, target: str, new_id: int) -> None:
        log.error("the %s chat moved to a new id: set %s_CHAT_ID=%s", target, target.upper(), new_id)
        if target == "operator":
            self.chats.operator = new_id
        else:
            self.chats.police = new_id

    # -- to a child -------------------------------------------------------------------------------

    async def _to_child(self, item: Any, limits: Any) -> dict | None:
        payload = item.payload
        chat_id = self._child_chat(item)
        if item.kind == Kind.DELETE_MESSAGES:
            ids = sorted(set(payload["message_ids"]))  # may be empty: nothing recent to clear
            for start in range(0, len(ids), 100):  # deleteMessages takes at most 100 ids
                try:
                    await self.bot.delete_messages(chat_id, ids[start:start + 100])
                except TelegramBadRequest:
                    pass  # older than 48 hours or already gone: nothing more can be done
            return None
        if item.kind == Kind.STAFF_COPY:
            source = self.chats.of(payload["chat"])
            sent = await self.bot.copy_message(chat_id, source, payload["message_id"], caption=payload.get("caption"))
            return {"message_ids": [sent.message_id]}
        parts = split_text(payload["text"], TEXT_LIMIT)
        ids = []
        for index, part in enumerate(parts):
            if index:
                await limits.acquire_extra(item)
            last = index == len(parts) - 1
            ids.append(await lean_api.send_text(self.bot, chat_id, part, payload.get("buttons") if last else None))
        return {"message_ids": ids}

    def _child_chat(self, item: Any) -> int:
        # A last message after the child erased their data carries its own address; any other comes
        # with the claim (Outbox.ready reads it from the conversation), so no transaction here.
        address = item.payload.get("address") or item.address
        if not address or "chat_id" not in address:
            raise DeliveryError("the child deleted their data", permanent=True)
        return int(address["chat_id"])

    # -- to a staff chat --------------------------------------------------------------------------

    async def _to_staff(self, item: Any, limits: Any) -> dict | None:
        chat_id = self.chats.of(item.target)
        if chat_id is None:
            return None  # police chat not configured: nothing to deliver
        if item.kind == Kind.DELETE_TOPIC:
            try:
                await self.bot.delete_forum_topic(chat_id, item.payload["topic_id"])
            except TelegramBadRequest:
                pass  # already deleted by staff
            return None
        if item.kind == GENERAL_PHOTO:  # the Monday figures (bot/statistics/report.py)
            return await send_general_photo(self.bot, chat_id, item.payload)
        if item.kind == Kind.GENERAL:
            text = self.engine.say(self.lang, item.payload["key"], **item.payload.get("slots", {}))
            message = await self.bot.send_message(chat_id, text, protect_content=True)
            return {"message_ids": [message.message_id]}
        async with self.db.transaction() as tx:
            case = await tx.cases.get(item.payload["case_id"])
        if case is None:
            return None  # purged meanwhile
        try:
            return await self._case_item(item, case, chat_id, limits)
        except TelegramBadRequest as error:
            problem = str(error).lower()
            if "topic_closed" in problem:
                # Staff closed the topic; a case still being worked on reopens it.
                await self.bot.reopen_forum_topic(chat_id, getattr(case, f"{item.target}_topic_id"))
                return await self._case_item(item, case, chat_id, limits)
            if "thread not found" not in problem and "topic_deleted" not in problem:
                raise
            # Staff deleted the topic: open a new one with the card, then send this item there.
            log.warning("case topic was deleted; recreating it", extra={"case": case.number})
            case = await self._store(case.id, **{f"{item.target}_topic_id": None, f"{item.target}_card_message_id": None})
            if item.kind in (Kind.CASE_CARD, Kind.CARD_UPDATE):
                return await self._open_topic(item, case, chat_id, limits)
            await self._open_topic(item, case, chat_id, limits)
            case = await self._load(case.id)
            return await self._case_item(item, case, chat_id, limits)

    async def _case_item(self, item: Any, case: Any, chat_id: int, limits: Any) -> dict | None:
        target = item.target
        topic = getattr(case, f"{target}_topic_id")
        if item.kind == Kind.CASE_CARD or topic is None:
            result = await self._open_topic(item, case, chat_id, limits)
            if item.kind == Kind.CASE_CARD:
                return result
            case = await self._load(case.id)
            topic = getattr(case, f"{target}_topic_id")
        if item.kind == Kind.CARD_UPDATE:
            await self._edit_card(target, case, chat_id)
            return None
        if item.kind == Kind.NOTICE:
            text = self.engine.say(self.lang, item.payload["key"], **item.payload.get("slots", {}))
            return {"message_ids": [await lean_api.send_text(self.bot, chat_id, text, message_thread_id=topic,
                                                             protect_content=True)]}
        if item.kind == Kind.RELAY:
            return await self._relay(item.payload, case, target, chat_id, topic)
        common = {"message_thread_id": topic, "protect_content": True}
        if item.kind == Kind.CARD_PART:
            message = await self.bot.send_message(chat_id, item.payload["text"], link_preview_options=NO_PREVIEW, **common)
            return {"message_ids": [message.message_id]}
        if item.kind == Kind.CASE_FILES:
            files = item.payload["files"]
            if len(files) == 1:  # Telegram albums need two to ten items
                return {"message_ids": [(await self._send_one(chat_id, files[0], None, common)).message_id]}
            messages = await self.bot.send_media_group(chat_id, [_input_media(f) for f in files], **common)
            return {"message_ids": [message.message_id for message in messages]}
        raise DeliveryError(f"unknown kind {item.kind}", permanent=True)

    async def _open_topic(self, item: Any, case: Any, chat_id: int, limits: Any) -> dict:
        """Topic, then card, each recorded at once so a retry never repeats it. What follows the card
        (the rest of a long report, the child's files) is queued in the same commit as the card's id,
        one item per message, so a failure after the card retries only what is missing."""
        target = item.target
        if getattr(case, f"{target}_topic_id") is None:
            topic = await lean_api.create_topic(self.bot, chat_id, topic_name(self.engine, self.lang, case))
            case = await self._store(case.id, **{f"{target}_topic_id": topic})
            await limits.acquire_extra(item)
        topic_id = getattr(case, f"{target}_topic_id")
        if getattr(case, f"{target}_card_message_id") is None:
            text, overflow = card_text(self.engine, self.lang, case, await self._holder(case))
            card = await lean_api.send_text(self.bot, chat_id, text, markup=self._card_buttons(target, case),
                                            message_thread_id=topic_id, protect_content=True)
            async with self.db.transaction() as tx:
                case = await tx.cases.update(case.id, **{f"{target}_card_message_id": card})
                follow = [(Kind.CARD_PART, {"text": part}) for part in (split_text(overflow, TEXT_LIMIT) if overflow else ())]
                follow += [(Kind.CASE_FILES, {"files": files}) for files in _file_messages(case)]
                for kind, payload in follow:
                    await tx.outbox.add(target, item.channel, item.lane, kind, {"case_id": case.id, **payload},
                                        priority=item.priority, case_id=case.id)
        return {"topic_id": topic_id, "card_message_id": getattr(case, f"{target}_card_message_id")}

    async def _edit_card(self, target: str, case: Any, chat_id: int) -> None:
        card_id = getattr(case, f"{target}_card_message_id")
        if card_id is None:
            return
        try:
            await self.bot.edit_message_text(
                card_text(self.engine, self.lang, case, await self._holder(case))[0], chat_id=chat_id,
                message_id=card_id, reply_markup=self._card_buttons(target, case), link_preview_options=NO_PREVIEW)
        except TelegramBadRequest as error:
            if "not modified" not in str(error):
                raise

    def _card_buttons(self, target: str, case: Any) -> InlineKeyboardMarkup | None:
        if target != "operator":
            return None  # police read and answer; the case itself is run from the operator chat
        return card_keyboard(self.engine, self.lang, case, self.chats.police is not None)

    async def _relay(self, payload: dict, case: Any, target: str, chat_id: int, topic: int) -> dict:
        label = self.engine.say(self.lang, "operator.label.child_edited" if payload.get("edited") else "operator.label.child")
        media = payload.get("media")
        common = {"message_thread_id": topic, "protect_content": True}
        if media is None:
            sent = [await self.bot.send_message(chat_id, part, link_preview_options=NO_PREVIEW, **common)
                    for part in split_text(f"{label}\n{payload['text']}", TEXT_LIMIT)]
        else:
            sent = [await self._send_one(chat_id, media, f"{label}\n{payload.get('text') or ''}".strip()[:1024], common)]
        async with self.db.transaction() as tx:
            for message in sent:
                await tx.case_messages.add(case.id, target, child_message_id=payload.get("child_message_id"),
                                           staff_message_id=message.message_id)
        return {"message_ids": [message.message_id for message in sent]}

    async def _send_one(self, chat_id: int, media: dict, caption: str | None, common: dict) -> Any:
        """One file by its file id; pictures and videos under a spoiler."""
        kind, file = media["kind"], media["file_ref"]
        if kind == "photo":
            return await self.bot.send_photo(chat_id, file, caption=caption, has_spoiler=True, **common)
        if kind == "video":
            return await self.bot.send_video(chat_id, file, caption=caption, has_spoiler=True, **common)
        if kind == "animation":
            return await self.bot.send_animation(chat_id, file, caption=caption, has_spoiler=True, **common)
        if kind in ("voice", "audio"):
            return await self.bot.send_voice(chat_id, file, caption=caption, **common)
        return await self.bot.send_document(chat_id, file, caption=caption, **common)

    async def _holder(self, case: Any) -> str:
        if case.assignee_id is None:
            return "—"
        async with self.db.transaction() as tx:
            member = await tx.staff.get(case.assignee_id)
        return member.alias if member else "Admin"

    async def _load(self, case_id: int) -> Any:
        async with self.db.transaction() as tx:
            return await tx.cases.get(case_id)

    async def _store(self, case_id: int, **fields: Any) -> Any:
        async with self.db.transaction() as tx:
            return await tx.cases.update(case_id, **fields)


def _file_messages(case: Any) -> list[list[dict]]:
    """The child's files as messages: screenshots in albums (photos and videos together, documents
    together, at most ten), voice notes and GIFs one by one — re-sent by file id, never forwarded."""
    media = list(case.answers.get("media") or [])
    media += [value["voice"] for value in case.answers.values() if isinstance(value, dict) and "voice" in value]
    messages = []
    for kinds in (("photo", "video"), ("document",)):
        group = [m for m in media if m["kind"] in kinds]
        messages += [group[start:start + ALBUM_LIMIT] for start in range(0, len(group), ALBUM_LIMIT)]
    return messages + [[m] for m in media if m["kind"] in ("voice", "audio", "animation")]


def _input_media(media: dict) -> Any:
    if media["kind"] == "photo":
        return InputMediaPhoto(media=media["file_ref"], has_spoiler=True)
    if media["kind"] == "video":
        return InputMediaVideo(media=media["file_ref"], has_spoiler=True)
    return InputMediaDocument(media=media["file_ref"])


def _reason(error: Exception) -> str:
    text = str(error).lower()
    for known in ("chat not found", "message is too long", "thread not found", "not enough rights", "blocked"):
        if known in text:
            return known
    return "rejected by Telegram"
