"""The child's private chat: every message, edit and button press becomes one engine event.

This is the one way in for a child's update: read straight from the update's JSON, without
validating a whole aiogram `Update` or routing it through the dispatcher (a third of the work of an
update, bench/README.md finding 15). Everything that is not a child's private chat (staff chats,
stray groups, membership changes) goes through aiogram's dispatcher instead (inbound.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.conversation import Child, ConversationService
from dialogs.model import EventKind, Incoming
from handlers.telegram import lean_api
from handlers.telegram.convert import message_event
from storage import ChannelName, Transaction


@dataclass(frozen=True, slots=True)
class ChildTurn:
    """What a child did in their private chat, as `child_turn` reads it from an update."""

    child: Child
    event: Incoming
    callback_id: str | None = None  # a button's: its spinner is stopped after the commit


def child_turn(update: dict[str, Any]) -> ChildTurn | None:
    """A child's message, edit or button press in their private chat; None for anything else."""
    if (message := update.get("message")) is not None:
        person = message.get("from") or {}
        if _private(message) and person and not person.get("is_bot"):
            return ChildTurn(_child(message["chat"]["id"], person["id"], message.get("message_id")),
                             message_event(message))
    elif (edited := update.get("edited_message")) is not None:
        person = edited.get("from") or {}
        if _private(edited) and person and not person.get("is_bot"):
            return ChildTurn(_child(edited["chat"]["id"], person["id"]), message_event(edited, edited=True))
    elif (callback := update.get("callback_query")) is not None:
        message, person = callback.get("message") or {}, callback.get("from") or {}
        if _private(message) and person:
            event = Incoming(EventKind.BUTTON, text=callback.get("data") or "", language_hint=person.get("language_code"))
            return ChildTurn(_child(message["chat"]["id"], person["id"]), event, callback["id"])
    return None


def _private(message: dict[str, Any]) -> bool:
    return (message.get("chat") or {}).get("type") == "private"


def _child(chat_id: int, user_id: int, message_id: int | None = None) -> Child:
    return Child(ChannelName.TELEGRAM, user_id, {"chat_id": chat_id}, message_id)


async def take_turn(tx: Transaction, conversations: ConversationService, bot: Bot, turn: ChildTurn) -> None:
    await conversations.handle(tx, turn.child, turn.event)
    if turn.callback_id is not None:
        # After the commit: the transaction never waits on the network.
        tx.after_commit(partial(_stop_spinner, bot, turn.callback_id))


async def _stop_spinner(bot: Bot, callback_id: str) -> None:
    try:
        await lean_api.answer_callback(bot, callback_id)
    except TelegramAPIError:
        pass  # the spinner stops by itself; nothing is lost


def child_of(update: dict[str, Any]) -> Child | None:
    """Who sent an update, if it was a child in their private chat (to tell them of one that was lost)."""
    turn = child_turn(update)
    return turn.child if turn is not None else None
