"""The child's private chat: every message and button press becomes one engine event."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from aiogram import Bot, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Message

from bot.conversation import Child, ConversationService
from dialogs.model import EventKind, Incoming
from handlers.telegram import lean_api
from handlers.telegram.convert import message_event, text_event


# Filters are coroutines: aiogram runs plain callables (and magic filters) in a thread, one hand-off each.
async def in_private_chat(event: Message | CallbackQuery) -> bool:
    message = event.message if isinstance(event, CallbackQuery) else event
    return message is not None and message.chat.type == ChatType.PRIVATE


async def from_a_person(message: Message) -> bool:
    return message.from_user is not None and not message.from_user.is_bot


def _child(chat_id: int, user_id: int, message_id: int | None = None) -> Child:
    return Child("telegram", user_id, {"chat_id": chat_id}, message_id)


def button_event(data: str | None, language_hint: str | None) -> Incoming:
    return Incoming(EventKind.BUTTON, text=data or "", language_hint=language_hint)


@dataclass(frozen=True, slots=True)
class ChildTurn:
    """A child's typed text or button press, as `child_turn` reads it from an update."""

    child: Child
    event: Incoming
    callback_id: str | None = None  # a button's: its spinner is stopped after the commit


def child_turn(update: dict[str, Any]) -> ChildTurn | None:
    """A child's typed text or button press in their private chat, read straight from the update's
    JSON; None for anything else (media, edits, groups…), which goes through aiogram's dispatcher.

    Nearly every update is one of these two: reading them here spares each the validation of a
    whole aiogram `Update` (a button's carries the message it belongs to) and the dispatcher's
    routing, a third of the work of an update (bench/README.md, finding 15). The routers below
    handle the same updates the same way when they come through aiogram."""
    if (message := update.get("message")) is not None:
        person, text = message.get("from") or {}, message.get("text")
        if _private(message) and person and not person.get("is_bot") and isinstance(text, str):
            event = text_event(text, person.get("language_code"))
            return ChildTurn(_child(message["chat"]["id"], person["id"], message["message_id"]), event)
    elif (callback := update.get("callback_query")) is not None:
        message, person = callback.get("message") or {}, callback["from"]
        if _private(message):
            event = button_event(callback.get("data"), person.get("language_code"))
            return ChildTurn(_child(message["chat"]["id"], person["id"]), event, callback["id"])
    return None


def _private(message: dict[str, Any]) -> bool:
    return (message.get("chat") or {}).get("type") == ChatType.PRIVATE


async def take_turn(tx: Any, conversations: ConversationService, bot: Bot, turn: ChildTurn) -> None:
    await conversations.handle(tx, turn.child, turn.event)
    if turn.callback_id is not None:
        # After the commit: the transaction never waits on the network.
        tx.after_commit(partial(_stop_spinner, bot, turn.callback_id))


async def on_child_message(message: Message, tx: Any, conversations: ConversationService) -> None:
    child = _child(message.chat.id, message.from_user.id, message.message_id)
    await conversations.handle(tx, child, message_event(message))


async def on_child_edit(message: Message, tx: Any, conversations: ConversationService) -> None:
    await conversations.handle(tx, _child(message.chat.id, message.from_user.id), message_event(message, edited=True))


async def on_child_button(callback: CallbackQuery, tx: Any, conversations: ConversationService) -> None:
    event = button_event(callback.data, callback.from_user.language_code)
    turn = ChildTurn(_child(callback.message.chat.id, callback.from_user.id), event, callback.id)
    await take_turn(tx, conversations, callback.bot, turn)


async def _stop_spinner(bot: Bot, callback_id: str) -> None:
    try:
        await lean_api.answer_callback(bot, callback_id)
    except TelegramAPIError:
        pass  # the spinner stops by itself; nothing is lost


def child_router() -> Router:
    """A fresh router (aiogram attaches a router to one dispatcher only)."""
    router = Router(name="child")
    router.message.filter(in_private_chat, from_a_person)
    router.edited_message.filter(in_private_chat)
    router.callback_query.filter(in_private_chat)
    router.message.register(on_child_message)
    router.edited_message.register(on_child_edit)
    router.callback_query.register(on_child_button)
    return router
