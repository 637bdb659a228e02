"""The child's private chat: every message and button press becomes one engine event."""
from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Message

from bot.conversation import Child, ConversationService
from dialogs.model import EventKind, Incoming
from handlers.telegram import lean_api
from handlers.telegram.convert import message_event


# Filters are coroutines: aiogram runs plain callables (and magic filters) in a thread, one hand-off each.
async def in_private_chat(event: Message | CallbackQuery) -> bool:
    message = event.message if isinstance(event, CallbackQuery) else event
    return message is not None and message.chat.type == ChatType.PRIVATE


async def from_a_person(message: Message) -> bool:
    return message.from_user is not None and not message.from_user.is_bot


def _child(chat_id: int, user_id: int, message_id: int | None = None) -> Child:
    return Child("telegram", user_id, {"chat_id": chat_id}, message_id)


async def on_child_message(message: Message, tx: Any, conversations: ConversationService) -> None:
    child = _child(message.chat.id, message.from_user.id, message.message_id)
    await conversations.handle(tx, child, message_event(message))


async def on_child_edit(message: Message, tx: Any, conversations: ConversationService) -> None:
    await conversations.handle(tx, _child(message.chat.id, message.from_user.id), message_event(message, edited=True))


async def on_child_button(callback: CallbackQuery, tx: Any, conversations: ConversationService) -> None:
    event = Incoming(EventKind.BUTTON, text=callback.data or "", language_hint=callback.from_user.language_code)
    await conversations.handle(tx, _child(callback.message.chat.id, callback.from_user.id), event)
    tx.after_commit(lambda: _stop_spinner(callback))  # the transaction never waits on the network


async def _stop_spinner(callback: CallbackQuery) -> None:
    try:
        await lean_api.answer_callback(callback.bot, callback.id)
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
