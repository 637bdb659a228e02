"""A fake Telegram Bot API server for the test-suite.

It speaks real HTTP on 127.0.0.1 so the real aiogram ``Bot`` (and our own getUpdates loop,
retry and rate-limit code) runs unmodified against it::

    async with FakeTelegram(token="123:ABC") as tg:
        bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
        tg.user_sends_text(42, "/start")
        await tg.wait_for(lambda tg: tg.sent_to(42))

The world lives in memory: users, private chats, (forum) supergroups with members and topics,
every message (bot-sent and user-sent) and every API call.  Answers are shaped like Telegram's,
including the quirks that bite real bots; each mimicked quirk is marked ``# Quirk:``.
Nothing here sleeps: tests wait with :meth:`FakeTelegram.wait_for`, which wakes on every change.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import html
import itertools
import json
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

__all__ = ["ApiError", "Call", "FakeFile", "FakeTelegram", "StoredMessage", "Topic"]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
TOPIC_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
MEDIA_KINDS = ("photo", "document", "voice", "video", "audio", "animation", "sticker", "video_note")
# Message fields carried over by copyMessage / forwardMessage (service messages have none).
COPYABLE = (*MEDIA_KINDS, "text", "entities", "caption", "caption_entities", "has_media_spoiler",
            "show_caption_above_media", "location", "contact", "poll", "venue", "dice")
SEND_METHODS = frozenset({
    "sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendVideo", "sendAudio",
    "sendAnimation", "sendSticker", "sendMediaGroup", "copyMessage", "copyMessages",
    "forwardMessage",
})
# Form fields that stay strings even when they look like JSON ("123", "true", "null").
STRING_FIELDS = frozenset({
    "text", "caption", "title", "name", "parse_mode", "description", "short_description", "url",
    "secret_token", "callback_query_id", "inline_message_id", "action", "emoji", "file_id",
    "business_connection_id", "message_effect_id", "icon_custom_emoji_id", "language_code",
    "ip_address", "question", "first_name", "last_name", "phone_number", *MEDIA_KINDS,
    "thumbnail", "certificate",
})
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note",
    "upload_video_note",
})
ADMIN_RIGHTS = (  # every boolean aiogram 3.31's ChatMemberAdministrator requires, plus extras
    "can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages",
    "can_manage_video_chats", "can_restrict_members", "can_promote_members", "can_change_info",
    "can_invite_users", "can_post_stories", "can_edit_stories", "can_delete_stories",
    "can_send_welcome_messages", "can_pin_messages", "can_manage_topics",
)
RESTRICTED_RIGHTS = (
    "can_send_messages", "can_send_audios", "can_send_documents", "can_send_photos",
    "can_send_videos", "can_send_video_notes", "can_send_voice_notes", "can_send_polls",
    "can_send_other_messages", "can_add_web_page_previews", "can_react_to_messages",
    "can_edit_tag", "can_change_info", "can_invite_users", "can_pin_messages",
    "can_manage_topics",
)
FAULT_TEXT = {
    400: "Bad Request: injected fault", 403: "Forbidden: bot was blocked by the user",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot "
         "instance is running",
    500: "Internal Server Error", 502: "Bad Gateway",
}


class ApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": code, "description": ..., "parameters"}``."""

    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


def _bad(description: str, **parameters: Any) -> ApiError:
    return ApiError(400, f"Bad Request: {description}", **parameters)


def utf16_len(text: str) -> int:
    """Telegram measures text (limits, entity offsets) in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    """One request the bot made. ``params`` has JSON-valued fields decoded."""

    method: str
    params: dict[str, Any]
    time: float
    uploads: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # key -> (name, bytes)
    injected: str | None = None  # "fail" / "drop" when a fault was injected
    ok: bool | None = None
    error_code: int | None = None
    description: str | None = None
    result: Any = None

    def __repr__(self) -> str:
        brief = {k: (v[:40] + "…" if isinstance(v, str) and len(v) > 40 else v)
                 for k, v in self.params.items()}
        outcome = "ok" if self.ok else f"{self.error_code} {self.description}"
        return f"<{self.method} {brief} -> {outcome}>"


@dataclass
class FakeFile:
    file_id: str
    file_unique_id: str
    kind: str
    file_name: str | None
    mime_type: str | None
    content: bytes


@dataclass
class StoredMessage:
    """A message as Telegram holds it: ``data`` is the full Message dict (updated on edits)."""

    chat_id: int
    message_id: int
    data: dict[str, Any]
    thread_id: int | None
    from_bot: bool
    method: str | None = None  # the API method that produced it (None: injected by a user)
    params: dict[str, Any] = field(default_factory=dict)
    service: bool = False
    update_id: int | None = None
    reactions: list[Any] = field(default_factory=list)
    pinned: bool = False

    text = property(lambda self: self.data.get("text"))
    caption = property(lambda self: self.data.get("caption"))
    reply_markup = property(lambda self: self.data.get("reply_markup"))
    media_group_id = property(lambda self: self.data.get("media_group_id"))

    @property
    def kind(self) -> str:
        """'text', 'photo', 'document', ... or the service field name."""
        for key in (*MEDIA_KINDS, "text", "location", "contact", "poll", "venue", "dice"):
            if key in self.data:
                return key
        return next((k for k in self.data if k.startswith(("forum_topic", "migrate"))), "other")


@dataclass
class Topic:
    chat_id: int
    thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False
    created_message_id: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = {"message_thread_id": self.thread_id, "name": self.name,
               "icon_color": self.icon_color}
        if self.icon_custom_emoji_id:
            out["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return out


@dataclass
class _Chat:
    id: int
    type: str  # private / group / supergroup / channel
    title: str | None = None
    username: str | None = None
    is_forum: bool = False
    members: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> {"status", rights}
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    topics: dict[int, Topic] = field(default_factory=dict)
    next_message_id: int = 1
    migrated_to: int | None = None


class _HtmlEntities(HTMLParser):
    """parse_mode=HTML: returns (plain text, entities) or raises like Telegram does."""

    TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
            "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
            "del": "strikethrough", "a": "text_link", "code": "code", "pre": "pre",
            "tg-spoiler": "spoiler", "span": "spoiler", "blockquote": "blockquote",
            "tg-emoji": "custom_emoji"}

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self.source, self.parts, self.length = source, [], 0
        self.stack: list[tuple[str, int, dict[str, str | None]]] = []
        self.entities: list[dict[str, Any]] = []

    def parse(self) -> tuple[str, list[dict[str, Any]]]:
        # The trailing space stops HTMLParser from eating an "&" at the very end ("AT&T").
        self.feed(self.source + " ")
        self.close()
        if self.stack:
            self._fail(f'Can\'t find end tag corresponding to start tag "{self.stack[-1][0]}"')
        return "".join(self.parts)[:-1], sorted(self.entities, key=lambda e: e["offset"])

    def _fail(self, message: str) -> None:
        raise _bad(f"can't parse entities: {message}")

    def _index(self) -> int:
        line, col = self.getpos()  # where the construct being handled starts
        return sum(len(s) for s in self.source.splitlines(keepends=True)[: line - 1]) + col

    def _byte_offset(self) -> int:
        return len(self.source[: self._index()].encode())

    def _add(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.TAGS or (tag == "span" and dict(attrs).get("class") != "tg-spoiler"):
            self._fail(f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}')
        self.stack.append((tag, self.length, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Quirk: Telegram has no <br/>; newlines are plain "\n".
        self._fail(f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}')

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            self._fail(f'Unmatched end tag at byte offset {self._byte_offset()}, '
                       f'expected "</{self.stack[-1][0] if self.stack else ""}>", found "</{tag}>"')
        tag, start, attrs = self.stack.pop()
        if tag == "code" and self.stack and self.stack[-1][0] == "pre":
            # <pre><code class="language-x"> is one "pre" entity with a language
            language = (attrs.get("class") or "").removeprefix("language-")
            self.stack[-1][2]["language"] = language or None
            return
        if self.length == start:  # Telegram silently drops empty entities
            return
        entity: dict[str, Any] = {"type": self.TAGS[tag], "offset": start,
                                  "length": self.length - start}
        if tag == "a":
            entity["url"] = attrs.get("href") or ""
        elif tag == "pre" and attrs.get("language"):
            entity["language"] = attrs["language"]
        elif tag == "blockquote" and "expandable" in attrs:
            entity["type"] = "expandable_blockquote"
        elif tag == "tg-emoji":
            entity["custom_emoji_id"] = attrs.get("emoji-id") or ""
        self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        if "<" in data:  # Quirk: every literal "<" must be escaped as &lt;
            self._fail(f"Unexpected '<' at byte offset {self._byte_offset()}")
        self._add(data)

    def handle_entityref(self, name: str) -> None:
        # Only &lt; &gt; &amp; &quot; are named entities Telegram knows; others stay literal.
        if name in ("lt", "gt", "amp", "quot"):
            self._add(html.unescape(f"&{name};"))
        else:
            end = self._index() + 1 + len(name)
            self._add(f"&{name}" + (";" if self.source[end: end + 1] == ";" else ""))

    def handle_charref(self, name: str) -> None:
        self._add(html.unescape(f"&#{name};"))

    def handle_comment(self, data: str) -> None:
        self._fail(f"Unsupported comment at byte offset {self._byte_offset()}")


def _parse_markdown_v2(source: str) -> str:
    """parse_mode=MarkdownV2, simplified: strips markup, rejects unescaped reserved characters
    (Telegram's most common complaint). Entities are not reconstructed."""
    out, i, in_code, brackets = [], 0, False, 0
    while i < len(source):
        char = source[i]
        if char == "\\" and i + 1 < len(source):
            out.append(source[i + 1])
            i += 2
            continue
        if char == "`":
            in_code = not in_code
        elif in_code:
            out.append(char)
        elif char == "[":
            brackets += 1
        elif char == "]" and brackets and source[i + 1: i + 2] == "(":
            brackets -= 1
            i = source.find(")", i)
            if i < 0:
                raise _bad("can't parse entities: Can't find end of a URL")
        elif char == ">" and (i == 0 or source[i - 1] == "\n"):
            pass  # a blockquote line
        elif char in "*_~|":
            pass  # formatting markers
        elif char in "_*[]()~`>#+-=|{}.!\\":
            raise _bad(f"can't parse entities: Character '{char}' is reserved and must be "
                       "escaped with the preceding '\\'")
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _auto_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram attaches to a user's plain text: a leading /command and URLs."""
    entities = []
    if text.startswith("/"):
        command = text.split()[0]
        entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(command)})
    for match in re.finditer(r"https?://\S+", text):
        entities.append({"type": "url", "offset": utf16_len(text[: match.start()]),
                         "length": utf16_len(match.group())})
    return entities


def _without_reply(data: dict[str, Any]) -> dict[str, Any]:
    # Quirk: reply_to_message is never nested more than one level deep.
    return {k: copy.deepcopy(v) for k, v in data.items() if k != "reply_to_message"}


class FakeTelegram:
    """In-memory Telegram world + Bot API HTTP server. See the module docstring."""

    def __init__(self, token: str = "123:ABC", *, bot_username: str = "oberih_test_bot",
                 bot_first_name: str = "Oberih", clock: Callable[[], float] = time.monotonic,
                 host: str = "127.0.0.1") -> None:
        self.token, self.host, self.clock = token, host, clock
        self.bot_id = int(token.split(":")[0])
        self.bot_user = {"id": self.bot_id, "is_bot": True, "first_name": bot_first_name,
                         "username": bot_username}
        self.users: dict[int, dict[str, Any]] = {}
        self.blocked: set[int] = set()
        self.deactivated: set[int] = set()
        self.chats: dict[int, _Chat] = {}
        self.files: dict[str, FakeFile] = {}
        self.calls: list[Call] = []
        self.unknown_calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []  # every update ever produced
        self.pending: list[dict[str, Any]] = []  # not yet confirmed via getUpdates offset
        self.deleted: list[StoredMessage] = []
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.webhook: dict[str, Any] | None = None
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._open_queries: set[str] = set()
        self._ids = itertools.count(1)  # update ids, file ids, query ids, media groups ...
        self._next_update_id = 100_000
        self._time_offset = 0.0
        self._changed = asyncio.Event()
        self._closing = False
        self._poll_generation = 0
        self._scripted: dict[str, deque[tuple[Any, ...]]] = {}
        self._fault_rate: tuple[float, random.Random, tuple[Any, ...], set[str] | None] | None
        self._fault_rate = None
        self._limits: dict[str, float | None] | None = None
        self._sent_log: dict[int | str, deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._methods = {name[5:].lower(): name[5:]  # handlers are named _api_<method>
                         for name in dir(self) if name.startswith("_api_")}

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._closing = True  # wakes pending long polls so shutdown does not wait for them
        self._bump()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def now(self) -> float:
        """The fake's clock (used by rate limits); move it with :meth:`advance_time`."""
        return self.clock() + self._time_offset

    def advance_time(self, seconds: float) -> None:
        self._time_offset += seconds
        self._bump()

    def _date(self) -> int:
        return int(time.time() + self._time_offset)

    def _bump(self) -> None:
        """Wake everyone waiting for a change (wait_for, long polls)."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # ------------------------------------------------------------------ world
    def add_user(self, user_id: int, first_name: str = "Child", username: str | None = None,
                 language_code: str | None = "uk") -> dict[str, Any]:
        """Create (or return) a user and their private chat with the bot."""
        if user_id not in self.users:
            user = {"id": user_id, "is_bot": False, "first_name": first_name}
            if username:
                user["username"] = username
            if language_code:
                user["language_code"] = language_code
            self.users[user_id] = user
            self.chats[user_id] = _Chat(user_id, "private", username=username,
                                        members={user_id: {"status": "member"},
                                                 self.bot_id: {"status": "member"}})
        return self.users[user_id]

    def add_group(self, chat_id: int, title: str = "Group", is_forum: bool = True,
                  bot_status: str = "administrator", can_manage_topics: bool = True,
                  can_delete_messages: bool = True, *, type: str = "supergroup",
                  owner_id: int | None = None, username: str | None = None) -> _Chat:
        chat = self.chats.get(chat_id) or _Chat(chat_id, type)
        chat.title, chat.is_forum, chat.username = title, is_forum, username
        if is_forum:  # Quirk: id 1 is the "General" topic; created topics never get it
            chat.next_message_id = max(chat.next_message_id, 2)
        self.chats[chat_id] = chat
        self._set_bot_status(chat, bot_status, can_manage_topics=can_manage_topics,
                             can_delete_messages=can_delete_messages)
        if owner_id is not None:
            self.add_member(chat_id, owner_id, "creator")
        return chat

    def add_member(self, chat_id: int, user_id: int, status: str = "member",
                   **rights: bool) -> None:
        """status: creator / administrator / member / restricted / left / kicked."""
        self.add_user(user_id)
        self.chats[chat_id].members[user_id] = {"status": status, **rights}

    def block_bot(self, user_id: int, notify: bool = True) -> None:
        """The user blocks the bot: sends to them answer 403, and (as in Telegram) a
        my_chat_member update with status "kicked" is queued."""
        self.add_user(user_id)
        self.blocked.add(user_id)
        if notify:
            self._member_update(self.chats[user_id], user_id, "member", "kicked")

    def unblock_bot(self, user_id: int, notify: bool = True) -> None:
        self.blocked.discard(user_id)
        if notify:
            self._member_update(self.chats[user_id], user_id, "kicked", "member")

    def deactivate_user(self, user_id: int) -> None:
        self.add_user(user_id)
        self.deactivated.add(user_id)

    def _set_bot_status(self, chat: _Chat, status: str, **rights: bool) -> None:
        chat.members[self.bot_id] = {"status": status, **rights}

    def _bot_can(self, chat: _Chat, right: str) -> bool:
        member = chat.members.get(self.bot_id, {})
        return member.get("status") == "creator" or (
            member.get("status") == "administrator" and bool(member.get(right, True)))

    def _chat_dict(self, chat: _Chat) -> dict[str, Any]:
        out: dict[str, Any] = {"id": chat.id, "type": chat.type}
        if chat.type == "private":
            out["first_name"] = self.users[chat.id]["first_name"]
        else:
            out["title"] = chat.title or ""
        if chat.username:
            out["username"] = chat.username
        if chat.is_forum:
            out["is_forum"] = True
        return out

    def _user_dict(self, user_id: int) -> dict[str, Any]:
        if user_id == self.bot_id:
            return dict(self.bot_user)
        return dict(self.users.get(user_id) or {"id": user_id, "is_bot": False,
                                                 "first_name": "Unknown"})

    def _member_dict(self, chat: _Chat, user_id: int) -> dict[str, Any]:
        return self._member_payload(user_id, chat.members.get(user_id, {"status": "left"}))

    def _member_payload(self, user_id: int, stored: dict[str, Any]) -> dict[str, Any]:
        """A ChatMember dict valid for aiogram (each status has its own required fields)."""
        status = stored["status"]
        out: dict[str, Any] = {"status": status, "user": self._user_dict(user_id)}
        if status == "administrator":
            out.update({r: stored.get(r, r not in ("can_be_edited", "is_anonymous"))
                        for r in ADMIN_RIGHTS})
        elif status == "creator":
            out["is_anonymous"] = False
        elif status == "restricted":
            out.update({r: stored.get(r, False) for r in RESTRICTED_RIGHTS},
                       is_member=True, until_date=0)
        elif status == "kicked":
            out["until_date"] = 0
        return out

    def _member_update(self, chat: _Chat, by_user_id: int, old: str, new: str) -> dict[str, Any]:
        if chat.type == "private":
            self._set_bot_status(chat, new)
        return self._push_update("my_chat_member", {
            "chat": self._chat_dict(chat), "from": self._user_dict(by_user_id),
            "date": self._date(),
            "old_chat_member": self._member_payload(self.bot_id, {"status": old}),
            "new_chat_member": self._member_dict(chat, self.bot_id)})

    # ------------------------------------------------------------------ messages & updates
    def _store(self, chat: _Chat, content: dict[str, Any], *, sender: int | None,
               thread_id: int | None = None, reply_to: StoredMessage | None = None,
               markup: dict[str, Any] | None = None, protect: bool = False,
               method: str | None = None, params: dict[str, Any] | None = None,
               service: bool = False) -> StoredMessage:
        message_id = chat.next_message_id
        chat.next_message_id += 1
        data: dict[str, Any] = {"message_id": message_id, "date": self._date(),
                                "chat": self._chat_dict(chat)}
        if sender is not None:
            data["from"] = self._user_dict(sender)
        else:  # channel post
            data["sender_chat"] = self._chat_dict(chat)
        if thread_id is not None:
            data["message_thread_id"], data["is_topic_message"] = thread_id, True
        if reply_to is not None:
            data["reply_to_message"] = _without_reply(reply_to.data)
        data.update(content)
        if markup and "inline_keyboard" in markup:  # only inline keyboards are echoed back
            data["reply_markup"] = {"inline_keyboard": markup["inline_keyboard"]}
        if protect:
            data["has_protected_content"] = True
        stored = StoredMessage(chat.id, message_id, data, thread_id, sender == self.bot_id,
                               method, params or {}, service)
        chat.messages[message_id] = stored
        return stored

    def _push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._next_update_id += 1
        update = {"update_id": self._next_update_id, kind: copy.deepcopy(payload)}
        self.updates.append(update)
        self.pending.append(update)
        self._bump()
        return update

    def _user_message(self, user_id: int, content: dict[str, Any], chat_id: int | None,
                      thread_id: int | None, reply_to: Any = None,
                      **user: Any) -> StoredMessage:
        self.add_user(user_id, **{k: v for k, v in user.items() if v is not None})
        for key in ("first_name", "username", "language_code"):
            if user.get(key) is not None:
                self.users[user_id][key] = user[key]
        if chat_id is None or chat_id == user_id:
            chat = self.chats[user_id]
            if user_id in self.blocked:  # writing to the bot again (Restart) unblocks it
                self.unblock_bot(user_id)
        else:
            if chat_id not in self.chats:
                raise LookupError(f"unknown chat {chat_id}: add_group() it first")
            chat = self.chats[chat_id]
            if chat.members.get(user_id, {}).get("status") in (None, "left"):
                chat.members[user_id] = {"status": "member"}
        reply = self._as_stored(chat.id, reply_to) if reply_to is not None else None
        if thread_id is not None:
            if thread_id not in chat.topics:
                raise LookupError(f"chat {chat.id} has no topic {thread_id}")
            # Quirk: in a forum topic every message without an explicit reply "replies" to
            # the topic's forum_topic_created service message.
            reply = reply or chat.messages.get(chat.topics[thread_id].created_message_id)
        msg = self._store(chat, content, sender=user_id, thread_id=thread_id, reply_to=reply)
        msg.update_id = self._push_update("message", msg.data)["update_id"]
        return msg

    def _as_stored(self, chat_id: int, ref: StoredMessage | dict[str, Any] | int) -> StoredMessage:
        if isinstance(ref, StoredMessage):
            chat_id, message_id = ref.chat_id, ref.message_id
        elif isinstance(ref, dict):
            chat_id, message_id = ref["chat"]["id"], ref["message_id"]
        else:
            message_id = ref
        found = self.chats[chat_id].messages.get(message_id)
        if found is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        return found

    def _new_file(self, kind: str, file_name: str | None = None, content: bytes = b"",
                  mime_type: str | None = None) -> FakeFile:
        n = next(self._ids)
        fake = FakeFile(f"FAKE{kind.upper()}{n:06d}", f"U{n:06d}", kind, file_name, mime_type,
                        content or f"{kind}-{n}".encode())
        self.files[fake.file_id] = fake
        return fake

    def _media(self, fake: FakeFile, kind: str, **extra: Any) -> dict[str, Any]:
        """The Message fields describing one file of ``kind``."""
        base = {"file_id": fake.file_id, "file_unique_id": fake.file_unique_id,
                "file_size": len(fake.content)}
        if kind == "photo":  # Quirk: a photo is a list of sizes, each with its own file_id
            small = {**base, "file_id": fake.file_id + "s", "file_unique_id": fake.file_unique_id
                     + "s", "width": 90, "height": 67}
            self.files.setdefault(small["file_id"], fake)
            return {"photo": [small, {**base, "width": 1280, "height": 960}]}
        if kind in ("document", "audio", "animation", "video"):
            base.update({k: v for k, v in (("file_name", fake.file_name),
                                           ("mime_type", fake.mime_type)) if v})
        sizes = {"video": {"width": 640, "height": 360, "duration": 5},
                 "animation": {"width": 320, "height": 240, "duration": 2},
                 "voice": {"duration": 3, "mime_type": "audio/ogg"}, "audio": {"duration": 30},
                 "video_note": {"length": 240, "duration": 3},
                 "sticker": {"type": "regular", "width": 512, "height": 512,
                             "is_animated": False, "is_video": False, "emoji": "🙂"}}
        out = {kind: {**base, **sizes.get(kind, {}), **extra}}
        if kind == "animation":  # Quirk: animations also arrive as a "document"
            out["document"] = dict(base)
        return out

    # ------------------------------------------------------------------ user-side injection
    def user_sends_text(self, user_id: int, text: str, chat_id: int | None = None,
                        thread_id: int | None = None, reply_to: Any = None,
                        language_code: str | None = None, first_name: str | None = None,
                        username: str | None = None) -> StoredMessage:
        content: dict[str, Any] = {"text": text}
        if entities := _auto_entities(text):
            content["entities"] = entities
        return self._user_message(user_id, content, chat_id, thread_id, reply_to,
                                  language_code=language_code, first_name=first_name,
                                  username=username)

    def _user_file(self, user_id: int, kind: str, chat_id: int | None, thread_id: int | None,
                   caption: str | None, media_group_id: str | None, file_name: str | None = None,
                   mime_type: str | None = None, reply_to: Any = None, data: bytes = b"") -> StoredMessage:
        content = self._media(self._new_file(kind, file_name, data, mime_type=mime_type), kind)
        if caption:
            content["caption"] = caption
        if media_group_id:
            content["media_group_id"] = str(media_group_id)
        return self._user_message(user_id, content, chat_id, thread_id, reply_to)

    def user_sends_photo(self, user_id: int, chat_id: int | None = None,
                         caption: str | None = None, media_group_id: str | None = None,
                         thread_id: int | None = None, reply_to: Any = None) -> StoredMessage:
        return self._user_file(user_id, "photo", chat_id, thread_id, caption, media_group_id,
                               reply_to=reply_to)

    def user_sends_document(self, user_id: int, chat_id: int | None = None,
                            caption: str | None = None, media_group_id: str | None = None,
                            thread_id: int | None = None, file_name: str = "evidence.pdf",
                            mime_type: str = "application/pdf", data: bytes = b"") -> StoredMessage:
        """`data`: the file's bytes (made up when not given)."""
        return self._user_file(user_id, "document", chat_id, thread_id, caption, media_group_id,
                               file_name, mime_type, data=data)

    def user_sends_video(self, user_id: int, chat_id: int | None = None,
                         caption: str | None = None, media_group_id: str | None = None,
                         thread_id: int | None = None) -> StoredMessage:
        return self._user_file(user_id, "video", chat_id, thread_id, caption, media_group_id,
                               mime_type="video/mp4")

    def user_sends_voice(self, user_id: int, chat_id: int | None = None,
                         thread_id: int | None = None) -> StoredMessage:
        return self._user_file(user_id, "voice", chat_id, thread_id, None, None)

    def user_sends_sticker(self, user_id: int, chat_id: int | None = None,
                           thread_id: int | None = None) -> StoredMessage:
        return self._user_file(user_id, "sticker", chat_id, thread_id, None, None)

    def user_sends_location(self, user_id: int, latitude: float = 50.4501,
                            longitude: float = 30.5234, chat_id: int | None = None,
                            thread_id: int | None = None) -> StoredMessage:
        content = {"location": {"latitude": latitude, "longitude": longitude}}
        return self._user_message(user_id, content, chat_id, thread_id)

    def user_sends_contact(self, user_id: int, phone_number: str = "+380501234567",
                           first_name: str = "Mom", chat_id: int | None = None,
                           own: bool = False) -> StoredMessage:
        contact = {"phone_number": phone_number, "first_name": first_name}
        if own:
            contact["user_id"] = user_id
        return self._user_message(user_id, {"contact": contact}, chat_id, None)

    def user_sends_poll(self, user_id: int, question: str = "Question?",
                        options: Iterable[str] = ("Yes", "No"),
                        chat_id: int | None = None) -> StoredMessage:
        poll = {"id": str(next(self._ids)), "question": question, "total_voter_count": 0,
                "options": [{"persistent_id": str(i), "text": o, "voter_count": 0}
                            for i, o in enumerate(options)],
                "is_closed": False, "is_anonymous": True, "type": "regular",
                "allows_multiple_answers": False, "allows_revoting": True,
                "members_only": False}
        return self._user_message(user_id, {"poll": poll}, chat_id, None)

    def user_edits_message(self, user_id: int, chat_id: int, message_id: int,
                           new_text: str) -> dict[str, Any]:
        msg = self._as_stored(chat_id, message_id)
        if msg.data.get("from", {}).get("id") != user_id:
            raise AssertionError("users can edit only their own messages")
        msg.data["text"], msg.data["edit_date"] = new_text, self._date()
        msg.data.pop("entities", None)
        if entities := _auto_entities(new_text):
            msg.data["entities"] = entities
        return self._push_update("edited_message", msg.data)

    def user_presses_button(self, user_id: int, message: StoredMessage | dict[str, Any],
                            data: str | None = None, *, text: str | None = None) -> dict[str, Any]:
        """A callback_query for one of the message's inline buttons (by data or by text)."""
        self.add_user(user_id)
        msg = self._as_stored(0, message)
        buttons = self.inline_buttons(msg)
        if text is not None:
            data = next((d for t, d in buttons if t == text), None)
        if data is None or data not in [d for _, d in buttons]:
            raise AssertionError(f"no such button ({text=!r}, {data=!r}); buttons: {buttons}")
        query_id = str(next(self._ids) * 7919)
        self._open_queries.add(query_id)
        chat_instance = str(int(hashlib.sha1(str(msg.chat_id).encode()).hexdigest()[:12], 16))
        return self._push_update("callback_query", {
            "id": query_id, "from": self._user_dict(user_id), "message": msg.data,
            "chat_instance": chat_instance, "data": data})

    def bot_added_to_group(self, chat_id: int, title: str = "Group", by_user_id: int = 1,
                           is_forum: bool = True, status: str = "administrator",
                           can_manage_topics: bool = True,
                           can_delete_messages: bool = True) -> dict[str, Any]:
        """A my_chat_member update: the bot goes from "left" to ``status``."""
        chat = self.chats.get(chat_id)
        old = chat.members.get(self.bot_id, {}).get("status", "left") if chat else "left"
        chat = self.add_group(chat_id, title, is_forum, status, can_manage_topics,
                              can_delete_messages)
        if by_user_id not in chat.members:
            self.add_member(chat_id, by_user_id, "creator")
        return self._member_update(chat, by_user_id, old, status)

    def group_migrated(self, old_chat_id: int, new_chat_id: int,
                       by_user_id: int = 1) -> list[dict[str, Any]]:
        """A basic group becomes a supergroup: two service messages, as Telegram sends them.
        Later sends to the old id answer 400 with parameters.migrate_to_chat_id."""
        old = self.chats.get(old_chat_id) or self.add_group(old_chat_id, "Group", False,
                                                            type="group")
        new = _Chat(new_chat_id, "supergroup", old.title, members=copy.deepcopy(old.members))
        self.chats[new_chat_id] = new
        self.add_user(by_user_id)
        first = self._store(old, {"migrate_to_chat_id": new_chat_id}, sender=by_user_id,
                            service=True)
        second = self._store(new, {"migrate_from_chat_id": old_chat_id}, sender=by_user_id,
                             service=True)
        old.migrated_to = new_chat_id
        return [self._push_update("message", first.data), self._push_update("message", second.data)]

    def channel_post(self, chat_id: int, text: str, title: str = "Channel") -> StoredMessage:
        chat = self.chats.get(chat_id) or self.add_group(chat_id, title, False, "administrator",
                                                         type="channel")
        msg = self._store(chat, {"text": text}, sender=None)
        msg.update_id = self._push_update("channel_post", msg.data)["update_id"]
        return msg

    # ------------------------------------------------------------------ fault injection
    def fail_next(self, method: str, n: int = 1, code: int = 429, retry_after: int = 1,
                  description: str | None = None) -> None:
        """The next ``n`` calls of ``method`` ("*" = any method) answer ``code``."""
        queue = self._scripted.setdefault(method.lower(), deque())
        queue.extend([("fail", code, retry_after, description)] * n)

    def drop_next(self, method: str, n: int = 1) -> None:
        """The next ``n`` calls of ``method`` get their connection closed without an answer."""
        self._scripted.setdefault(method.lower(), deque()).extend([("drop",)] * n)

    def clear_faults(self) -> None:
        """Forget every fault scripted with ``fail_next``/``drop_next`` (the outage is over)."""
        self._scripted.clear()

    def set_fault_rate(self, rate: float, seed: int = 0, codes: Iterable[int | str] = (429, 500),
                       methods: Iterable[str] | None = None) -> None:
        """Each matching call fails with probability ``rate`` (deterministic for a seed);
        a code of "drop" closes the connection. ``rate=0`` switches it off."""
        wanted = {m.lower() for m in methods} if methods is not None else None
        self._fault_rate = (rate, random.Random(seed), tuple(codes), wanted) if rate else None

    def enforce_limits(self, per_chat_per_sec: float | None = 1, group_per_min: float | None = 20,
                       global_per_sec: float | None = 30) -> None:
        """Answer 429 + retry_after when sends exceed Telegram's published limits."""
        self._limits = {"chat": per_chat_per_sec, "group": group_per_min, "global": global_per_sec}

    def disable_limits(self) -> None:
        self._limits = None

    def _next_fault(self, method: str) -> tuple[Any, ...] | None:
        for key in (method.lower(), "*"):
            if self._scripted.get(key):
                return self._scripted[key].popleft()
        if self._fault_rate:
            rate, rng, codes, methods = self._fault_rate
            if (methods is None or method.lower() in methods) and rng.random() < rate:
                code = rng.choice(codes)
                return ("drop",) if code == "drop" else ("fail", code, 1, None)
        return None

    def _check_limits(self, method: str, params: dict[str, Any]) -> None:
        if not self._limits or method not in SEND_METHODS:
            return
        now, chat_id = self.now(), params.get("chat_id")
        windows = [(self._sent_log.setdefault("global", deque()), 1.0, self._limits["global"])]
        if isinstance(chat_id, int):
            group = chat_id < 0
            windows.append((self._sent_log.setdefault(chat_id, deque()), 60.0 if group else 1.0,
                            self._limits["group" if group else "chat"]))
        retry_after = 0
        for log, window, limit in windows:
            while log and log[0] <= now - window:
                log.popleft()
            if limit is not None and len(log) >= limit:
                retry_after = max(retry_after, math.ceil(log[0] + window - now), 1)
        if retry_after:
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}",
                           retry_after=retry_after)
        for log, _, _ in windows:
            log.append(now)

    # ------------------------------------------------------------------ test helpers
    async def wait_for(self, predicate: Callable[[FakeTelegram], Any], timeout: float = 10.0,
                       what: str | None = None) -> Any:
        """Wait (woken on every API call / update, no polling) until ``predicate(self)`` is
        truthy; return its value. TimeoutError lists the recent calls."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (result := predicate(self)):
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = "\n  ".join(repr(c) for c in self.calls[-15:]) or "(none)"
                raise TimeoutError(f"wait_for({what or getattr(predicate, '__name__', '?')}) "
                                   f"timed out after {timeout}s; last calls:\n  {recent}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass
        return result

    def messages_in(self, chat_id: int, thread_id: int | None = None, *,
                    include_service: bool = False) -> list[StoredMessage]:
        """Live messages of a chat (thread_id=None: all threads), oldest first."""
        chat = self.chats.get(chat_id)
        return [m for m in (chat.messages.values() if chat else ())
                if (thread_id is None or m.thread_id == thread_id)
                and (include_service or not m.service)]

    def sent_to(self, chat_id: int, thread_id: int | None = None) -> list[StoredMessage]:
        """Live messages the bot sent to a chat (service messages excluded)."""
        return [m for m in self.messages_in(chat_id, thread_id) if m.from_bot]

    def last_message(self, chat_id: int, thread_id: int | None = None) -> StoredMessage | None:
        messages = self.messages_in(chat_id, thread_id)
        return messages[-1] if messages else None

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        chat = self.chats.get(chat_id)
        return chat.messages.get(message_id) if chat else None

    def topics(self, chat_id: int) -> list[Topic]:
        return list(self.chats[chat_id].topics.values())

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    @staticmethod
    def inline_buttons(message: StoredMessage | dict[str, Any]) -> list[tuple[str, str | None]]:
        """[(text, callback_data)] of a message's inline keyboard, row by row."""
        data = message.data if isinstance(message, StoredMessage) else message
        rows = (data.get("reply_markup") or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data")) for row in rows for b in row]

    # ------------------------------------------------------------------ HTTP plumbing
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        params, uploads = await self._read_params(request)
        method = self._methods.get(request.match_info["method"].lower())
        call = Call(method or request.match_info["method"], params, self.now(), uploads)
        self.calls.append(call)
        self._bump()
        try:
            if method is None:
                self.unknown_calls.append(call)
                raise ApiError(404, "Not Found: method not found")
            fault = self._next_fault(method)
            if fault and fault[0] == "drop":
                call.injected = "drop"
                assert request.transport is not None
                request.transport.abort()  # the client sees a reset, no HTTP answer at all
                return web.Response()  # never written: the connection is gone
            if fault:
                _, code, retry_after, description = fault
                call.injected = "fail"
                extra = {"retry_after": retry_after} if code == 429 else {}
                text = f"Too Many Requests: retry after {retry_after}" if code == 429 else None
                raise ApiError(code, description or text or FAULT_TEXT.get(code, "Error"), **extra)
            self._check_limits(method, params)
            try:
                result = await getattr(self, f"_api_{method}")(params, uploads)
            except KeyError as exc:  # a required parameter is missing
                raise _bad(f"{exc.args[0]} is empty") from None
        except ApiError as exc:
            call.ok, call.error_code, call.description = False, exc.code, exc.description
            body: dict[str, Any] = {"ok": False, "error_code": exc.code,
                                    "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return web.json_response(body, status=exc.code)
        finally:
            self._bump()
        call.ok, call.result = True, result
        return web.json_response({"ok": True, "result": result})

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
        raw: dict[str, Any] = dict(request.query)
        uploads: dict[str, tuple[str, bytes]] = {}
        if request.content_type == "application/json":
            raw.update(await request.json())
        elif request.can_read_body:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    with value.file:  # close aiohttp's temp file (ResourceWarning otherwise)
                        uploads[key] = (value.filename, value.file.read())
                else:
                    raw[key] = value
        params = {}
        for key, value in raw.items():
            if isinstance(value, str) and key not in STRING_FIELDS:
                try:
                    value = json.loads(value)  # numbers, booleans and JSON-serialized objects
                except ValueError:
                    pass  # e.g. chat_id="@channel"
            params[key] = value
        return params, uploads

    async def _download(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        fake = next((f for f in self.files.values() if self._file_path(f) == path), None)
        if request.match_info["token"] != self.token or fake is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=fake.content)

    @staticmethod
    def _file_path(fake: FakeFile) -> str:
        return f"{fake.kind}s/file_{fake.file_unique_id}"

    # ------------------------------------------------------------------ request validation
    def _chat(self, chat_id: Any, *, sending: bool = False) -> _Chat:
        if isinstance(chat_id, str):
            chat = next((c for c in self.chats.values() if c.username
                         and f"@{c.username}".lower() == chat_id.lower()), None)
        else:
            chat = self.chats.get(chat_id)
        if chat is None:
            raise _bad("chat not found")
        if chat.migrated_to is not None:
            raise _bad("group chat was upgraded to a supergroup chat",
                       migrate_to_chat_id=chat.migrated_to)
        if sending and chat.type == "private":
            if chat.id in self.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if chat.id in self.deactivated:
                raise ApiError(403, "Forbidden: user is deactivated")
        elif sending:
            status = chat.members.get(self.bot_id, {}).get("status", "left")
            kind = "channel" if chat.type == "channel" else f"{chat.type} chat"
            if status == "kicked":
                raise ApiError(403, f"Forbidden: bot was kicked from the {kind}")
            if status == "left":
                raise ApiError(403, f"Forbidden: bot is not a member of the {kind}")
        return chat

    def _thread(self, chat: _Chat, thread_id: int | None) -> int | None:
        if thread_id is None or not chat.is_forum:
            return None  # outside forums message_thread_id does not pick a topic
        topic = chat.topics.get(thread_id)
        if topic is None:
            raise _bad("message thread not found")
        if topic.closed and not self._bot_can(chat, "can_manage_topics"):
            raise _bad("TOPIC_CLOSED")
        return thread_id

    def _format(self, text: str, parse_mode: str | None, entities: Any,
                limit: int, what: str) -> tuple[str, list[dict[str, Any]]]:
        mode = (parse_mode or "").lower()
        if mode == "html":
            text, entities = _HtmlEntities(text).parse()
        elif mode == "markdownv2":
            text, entities = _parse_markdown_v2(text), []
        elif mode == "markdown":
            text, entities = re.sub(r"[*_`]", "", text), []
        elif mode:
            raise _bad(f"unsupported parse_mode {parse_mode!r}")
        if not text.strip() and what == "text":
            raise _bad("message text is empty")
        if utf16_len(text) > limit:
            raise _bad(f"message {'is' if what == 'text' else 'caption is'} too long")
        return text, list(entities or [])

    def _text_content(self, p: dict[str, Any]) -> dict[str, Any]:
        text, entities = self._format(p["text"], p.get("parse_mode"), p.get("entities"),
                                      TEXT_LIMIT, "text")
        return {"text": text, **({"entities": entities} if entities else {})}

    def _caption_content(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("caption"):
            return {}
        caption, entities = self._format(p["caption"], p.get("parse_mode"),
                                         p.get("caption_entities"), CAPTION_LIMIT, "caption")
        return {"caption": caption, **({"caption_entities": entities} if entities else {})}

    @staticmethod
    def _check_markup(markup: Any) -> dict[str, Any] | None:
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                    raise _bad("BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and not re.match(r"(https?|tg)://\S+$", url):
                    raise _bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
                if len(button) < 2:  # nothing but "text"
                    raise _bad("can't parse inline keyboard button: Text buttons are "
                               "unallowed in the inline keyboard")
        return markup

    def _reply(self, chat: _Chat, p: dict[str, Any]) -> StoredMessage | None:
        params = p.get("reply_parameters") or {}
        message_id = params.get("message_id", p.get("reply_to_message_id"))
        if message_id is None:
            return None
        source = self.chats.get(params.get("chat_id", chat.id)) or chat
        found = source.messages.get(message_id)
        allow = params.get("allow_sending_without_reply", p.get("allow_sending_without_reply"))
        if found is None and not allow:
            raise _bad("message to be replied not found")
        return found

    def _resolve_file(self, kind: str, value: Any, uploads: dict[str, Any],
                      name: str) -> FakeFile:
        if isinstance(value, str) and value.startswith("attach://"):
            if value[9:] not in uploads:
                raise _bad(f"can't find attached file {value[9:]!r}")
            value, name = None, value[9:]
        if value is None and name in uploads:  # uploaded file (multipart)
            filename, content = uploads[name]
            return self._new_file(kind, filename, content)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return self._new_file(kind, value.rsplit("/", 1)[-1])
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        raise _bad("wrong file identifier/HTTP URL specified")

    def _send(self, chat: _Chat, content: dict[str, Any], p: dict[str, Any],
              method: str) -> StoredMessage:
        """The common part of every send*: thread, reply, markup, protection."""
        reply = self._reply(chat, p)
        thread = self._thread(chat, p.get("message_thread_id"))
        if thread is None and reply is not None and chat.is_forum:
            thread = reply.thread_id  # a reply lands in the replied message's topic
        markup = self._check_markup(p.get("reply_markup"))
        return self._store(chat, content, sender=self.bot_id, thread_id=thread, reply_to=reply,
                           markup=markup, protect=bool(p.get("protect_content")), method=method,
                           params=p)

    def _bot_message(self, chat: _Chat, message_id: int, verb: str) -> StoredMessage:
        msg = chat.messages.get(message_id)
        if msg is None:
            raise _bad(f"message to {verb} not found")
        return msg

    # ------------------------------------------------------------------ API: bot & updates
    # Handlers are named _api_<exact Bot API method name>; lookup is case-insensitive.
    async def _api_getMe(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    async def _api_getUpdates(self, p: dict[str, Any], up: dict[str, Any]) -> list[Any]:
        if self.webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset = p.get("offset")
        if offset and offset > 0:  # confirms every update below offset
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        elif offset and offset < 0:
            self.pending = self.pending[offset:]
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        # Quirk: a newer getUpdates terminates a waiting one with 409 Conflict.
        self._poll_generation += 1
        generation = self._poll_generation
        self._bump()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(p.get("timeout") or 0)
        while not self.pending and not self._closing and loop.time() < deadline:
            try:
                await asyncio.wait_for(self._changed.wait(), deadline - loop.time())
            except TimeoutError:
                break
            if generation != self._poll_generation:
                raise ApiError(409, FAULT_TEXT[409])
        return copy.deepcopy(self.pending[:limit])

    async def _api_setWebhook(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        if not p.get("url"):
            self.webhook = None
            return True
        if not str(p["url"]).startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = dict(p)
        if p.get("drop_pending_updates"):
            self.pending.clear()
        return True

    async def _api_deleteWebhook(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        self.webhook = None
        if p.get("drop_pending_updates"):
            self.pending.clear()
        return True

    async def _api_getWebhookInfo(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        info = {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self.pending)}
        if self.webhook and self.webhook.get("allowed_updates"):
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    @staticmethod
    def _commands_key(p: dict[str, Any]) -> tuple[str, str]:
        scope = p.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), p.get("language_code") or ""

    async def _api_setMyCommands(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        for command in p["commands"]:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command.get("command", "")):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise _bad("command description is empty or too long")
        self.commands[self._commands_key(p)] = p["commands"]
        return True

    async def _api_deleteMyCommands(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        self.commands.pop(self._commands_key(p), None)
        return True

    async def _api_getMyCommands(self, p: dict[str, Any], up: dict[str, Any]) -> list[Any]:
        return self.commands.get(self._commands_key(p), [])

    # ------------------------------------------------------------------ API: sending
    async def _api_sendMessage(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(p["chat_id"], sending=True)
        return self._send(chat, self._text_content(p), p, "sendMessage").data

    async def _send_file(self, kind: str, method: str, p: dict[str, Any],
                         up: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(p["chat_id"], sending=True)
        fake = self._resolve_file(kind, p.get(kind), up, kind)
        content = {**self._media(fake, kind), **self._caption_content(p)}
        if p.get("has_spoiler"):
            content["has_media_spoiler"] = True
        return self._send(chat, content, p, method).data

    async def _api_sendPhoto(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("photo", "sendPhoto", p, up)

    async def _api_sendDocument(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("document", "sendDocument", p, up)

    async def _api_sendVoice(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("voice", "sendVoice", p, up)

    async def _api_sendVideo(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("video", "sendVideo", p, up)

    async def _api_sendAudio(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("audio", "sendAudio", p, up)

    async def _api_sendAnimation(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("animation", "sendAnimation", p, up)

    async def _api_sendSticker(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("sticker", "sendSticker", p, up)

    async def _api_sendMediaGroup(self, p: dict[str, Any], up: dict[str, Any]) -> list[Any]:
        chat = self._chat(p["chat_id"], sending=True)
        media = p["media"]
        if not 2 <= len(media) <= 10:
            raise _bad("wrong number of media in the album: must be 2-10")
        kinds = {item["type"] for item in media}
        for lonely in ("document", "audio"):  # Quirk: these only group with their own kind
            if lonely in kinds and len(kinds) > 1:
                raise _bad(f"{lonely} can't be mixed with other media types")
        contents = []
        for i, item in enumerate(media):  # validate everything before storing anything
            fake = self._resolve_file(item["type"], item.get("media"), up, f"media{i}")
            content = {**self._media(fake, item["type"]), **self._caption_content(item)}
            if item.get("has_spoiler"):
                content["has_media_spoiler"] = True
            contents.append(content)
        group_id = str(10**17 + next(self._ids))
        return [self._send(chat, {**c, "media_group_id": group_id}, p, "sendMediaGroup").data
                for c in contents]

    def _copy_content(self, source: StoredMessage, p: dict[str, Any], verb: str) -> dict[str, Any]:
        if source.data.get("has_protected_content"):  # Quirk: protected content stays put
            raise _bad(f"message can't be {verb}")
        content = {k: copy.deepcopy(v) for k, v in source.data.items() if k in COPYABLE}
        if not content:
            raise _bad(f"message can't be {verb}")  # service messages
        if "poll" in content:
            content["poll"]["id"] = str(next(self._ids))
        return content

    async def _api_copyMessage(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        source_chat = self._chat(p["from_chat_id"])
        source = self._bot_message(source_chat, p["message_id"], "copy")
        chat = self._chat(p["chat_id"], sending=True)
        content = self._copy_content(source, p, "copied")
        if "text" not in content and (p.get("caption") or p.get("remove_caption")):
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self._caption_content(p))  # the caption override
        # Quirk: the copy is not part of the source album and has no "forwarded" marks.
        return {"message_id": self._send(chat, content, p, "copyMessage").message_id}

    async def _api_copyMessages(self, p: dict[str, Any], up: dict[str, Any]) -> list[Any]:
        source_chat, chat = self._chat(p["from_chat_id"]), self._chat(p["chat_id"], sending=True)
        ids = p["message_ids"]
        if ids != sorted(set(ids)):
            raise _bad("message identifiers must be in strictly increasing order")
        sources = [source_chat.messages[i] for i in ids if i in source_chat.messages]
        if not sources:  # missing messages are skipped silently, but not all of them
            raise _bad("messages to copy not found")
        groups: dict[str, str] = {}  # source media_group_id -> new one (albums stay albums)
        result = []
        for source in sources:
            content = self._copy_content(source, p, "copied")
            if p.get("remove_caption"):
                content.pop("caption", None)
                content.pop("caption_entities", None)
            if source.media_group_id:
                content["media_group_id"] = groups.setdefault(
                    source.media_group_id, str(10**17 + next(self._ids)))
            result.append({"message_id": self._send(chat, content, p, "copyMessages").message_id})
        return result

    async def _api_forwardMessage(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        source_chat = self._chat(p["from_chat_id"])
        source = self._bot_message(source_chat, p["message_id"], "forward")
        chat = self._chat(p["chat_id"], sending=True)
        content = self._copy_content(source, p, "forwarded")
        sender = source.data.get("from")
        content["forward_origin"] = (
            {"type": "user", "date": source.data["date"], "sender_user": sender} if sender else
            {"type": "channel", "date": source.data["date"], "chat": source.data["chat"],
             "message_id": source.message_id})
        return self._send(chat, content, p, "forwardMessage").data

    # ------------------------------------------------------------------ API: editing
    def _editable(self, p: dict[str, Any]) -> StoredMessage:
        if p.get("inline_message_id"):
            raise _bad("inline messages are not simulated")
        msg = self._bot_message(self._chat(p["chat_id"]), p["message_id"], "edit")
        if not msg.from_bot or msg.service:
            raise _bad("message can't be edited")
        return msg

    def _apply_edit(self, msg: StoredMessage, content: dict[str, Any], markup: Any) -> dict:
        markup = self._check_markup(markup)
        # Quirk: an edit without reply_markup removes the inline keyboard.
        new_markup = {"inline_keyboard": markup["inline_keyboard"]} if markup else None
        if (all(msg.data.get(k) == v for k, v in content.items())
                and msg.data.get("reply_markup") == new_markup):
            raise _bad(NOT_MODIFIED)
        msg.data.update(content)
        msg.data = {k: v for k, v in msg.data.items() if v is not None}
        if new_markup:
            msg.data["reply_markup"] = new_markup
        else:
            msg.data.pop("reply_markup", None)
        msg.data["edit_date"] = self._date()
        return msg.data

    async def _api_editMessageText(self, p: dict[str, Any], up: dict[str, Any]) -> dict:
        msg = self._editable(p)
        if "text" not in msg.data:
            raise _bad("there is no text in the message to edit")
        content = {"entities": None, **self._text_content(p)}
        return self._apply_edit(msg, content, p.get("reply_markup"))

    async def _api_editMessageCaption(self, p: dict[str, Any], up: dict[str, Any]) -> dict:
        msg = self._editable(p)
        if "text" in msg.data:
            raise _bad("there is no caption in the message to edit")
        content = {"caption": None, "caption_entities": None, **self._caption_content(p)}
        return self._apply_edit(msg, content, p.get("reply_markup"))

    async def _api_editMessageReplyMarkup(self, p: dict[str, Any], up: dict[str, Any]) -> dict:
        return self._apply_edit(self._editable(p), {}, p.get("reply_markup"))

    def _delete(self, chat: _Chat, message_id: int) -> None:
        msg = self._bot_message(chat, message_id, "delete")
        if chat.type != "private" and not msg.from_bot and not self._bot_can(
                chat, "can_delete_messages"):
            raise _bad("message can't be deleted")
        self.deleted.append(chat.messages.pop(message_id))

    async def _api_deleteMessage(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        self._delete(self._chat(p["chat_id"]), p["message_id"])
        return True

    async def _api_deleteMessages(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        chat = self._chat(p["chat_id"])
        for message_id in p["message_ids"]:
            try:  # missing or undeletable messages are skipped
                self._delete(chat, message_id)
            except ApiError:
                pass
        return True

    # ------------------------------------------------------------------ API: misc
    async def _api_answerCallbackQuery(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        query_id = p["callback_query_id"]
        if query_id not in self._open_queries:  # unknown or already answered
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self._open_queries.discard(query_id)
        self.callback_answers[query_id] = p
        return True

    async def _api_sendChatAction(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        self._chat(p["chat_id"], sending=True)
        if p["action"] not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    async def _api_setMessageReaction(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        msg = self._chat(p["chat_id"]).messages.get(p["message_id"])
        if msg is None:
            raise _bad("MESSAGE_ID_INVALID")
        msg.reactions = list(p.get("reaction") or [])
        return True

    async def _api_pinChatMessage(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        self._bot_message(self._chat(p["chat_id"]), p["message_id"], "pin").pinned = True
        return True

    async def _api_unpinChatMessage(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        chat = self._chat(p["chat_id"])
        pinned = [m for m in chat.messages.values() if m.pinned]
        targets = [chat.messages[p["message_id"]]] if p.get("message_id") in chat.messages else (
            pinned[-1:] if "message_id" not in p else [])
        for msg in targets:
            msg.pinned = False
        return True

    async def _api_getFile(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        fake = self.files.get(p["file_id"])
        if fake is None:
            raise _bad("invalid file_id")
        return {"file_id": p["file_id"], "file_unique_id": fake.file_unique_id,
                "file_size": len(fake.content), "file_path": self._file_path(fake)}

    # ------------------------------------------------------------------ API: chats
    async def _api_getChat(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(p["chat_id"])
        # ChatFullInfo: aiogram 3.31 requires accent_color_id, max_reaction_count and
        # accepted_gift_types on top of the short Chat fields.
        return {**self._chat_dict(chat), "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                        "unique_gifts": False, "premium_subscription": False,
                                        "gifts_from_channels": False}}

    async def _api_getChatMember(self, p: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(p["chat_id"])
        if p["user_id"] not in self.users and p["user_id"] != self.bot_id:
            raise _bad("PARTICIPANT_ID_INVALID")
        return self._member_dict(chat, p["user_id"])

    async def _api_getChatAdministrators(self, p: dict[str, Any], up: dict[str, Any]) -> list:
        chat = self._chat(p["chat_id"])
        if chat.type == "private":
            raise _bad("there are no administrators in the private chat")
        return [self._member_dict(chat, uid) for uid, m in chat.members.items()
                if m["status"] in ("creator", "administrator")]

    async def _api_leaveChat(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        chat = self._chat(p["chat_id"])
        if chat.type == "private":
            raise _bad("chat member status can't be changed in private chats")
        self._set_bot_status(chat, "left")
        return True

    # ------------------------------------------------------------------ API: forum topics
    def _forum(self, p: dict[str, Any], right: str = "can_manage_topics") -> _Chat:
        chat = self._chat(p["chat_id"], sending=True)
        if not chat.is_forum:
            raise _bad("the chat is not a forum")
        if not self._bot_can(chat, right):
            raise _bad("not enough rights to manage topics")
        return chat

    def _topic(self, chat: _Chat, p: dict[str, Any]) -> Topic:
        topic = chat.topics.get(p["message_thread_id"])
        if topic is None:
            raise _bad("TOPIC_ID_INVALID")
        return topic

    def _topic_service(self, chat: _Chat, topic: Topic, content: dict[str, Any]) -> None:
        self._store(chat, content, sender=self.bot_id, thread_id=topic.thread_id, service=True)

    async def _api_createForumTopic(self, p: dict[str, Any], up: dict[str, Any]) -> dict:
        chat = self._forum(p)
        name, color = p["name"], p.get("icon_color", TOPIC_COLORS[0])
        if not 1 <= len(name) <= 128:
            raise _bad("TOPIC_TITLE_EMPTY" if not name else "TOPIC_TITLE_INVALID")
        if color not in TOPIC_COLORS:
            raise _bad("TOPIC_COLOR_INVALID")
        # Quirk: a topic's message_thread_id is the message_id of its forum_topic_created
        # service message, so topic ids and message ids share one counter.
        created = {"name": name, "icon_color": color}
        if p.get("icon_custom_emoji_id"):
            created["icon_custom_emoji_id"] = p["icon_custom_emoji_id"]
        service = self._store(chat, {"forum_topic_created": created}, sender=self.bot_id,
                              service=True, method="createForumTopic", params=p)
        service.thread_id = service.message_id
        service.data.update(message_thread_id=service.message_id, is_topic_message=True)
        topic = Topic(chat.id, service.message_id, name, color, p.get("icon_custom_emoji_id"),
                      created_message_id=service.message_id)
        chat.topics[topic.thread_id] = topic
        return topic.as_dict()

    async def _api_editForumTopic(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p)
        name = p.get("name", topic.name)
        emoji = p.get("icon_custom_emoji_id", topic.icon_custom_emoji_id)
        if (name, emoji) == (topic.name, topic.icon_custom_emoji_id):
            raise _bad("TOPIC_NOT_MODIFIED")
        topic.name, topic.icon_custom_emoji_id = name, emoji
        self._topic_service(chat, topic, {"forum_topic_edited": {"name": name}})
        return True

    async def _set_closed(self, p: dict[str, Any], closed: bool) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p)
        if topic.closed == closed:
            raise _bad("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        self._topic_service(chat, topic, {f"forum_topic_{'closed' if closed else 'reopened'}": {}})
        return True

    async def _api_closeForumTopic(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        return await self._set_closed(p, True)

    async def _api_reopenForumTopic(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        return await self._set_closed(p, False)

    async def _api_deleteForumTopic(self, p: dict[str, Any], up: dict[str, Any]) -> bool:
        chat = self._forum(p, "can_delete_messages")
        topic = chat.topics.pop(self._topic(chat, p).thread_id)
        for message_id in [m.message_id for m in chat.messages.values()
                           if m.thread_id == topic.thread_id]:  # the topic's messages go too
            self.deleted.append(chat.messages.pop(message_id))
        return True
