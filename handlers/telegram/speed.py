"""Keeps aiogram fast under load: answers parsed without rebuilding pydantic models each time.

aiogram parses every Bot API answer as `Response[method.__returning__]`; pydantic keeps such
parametrized models only weakly, so after a garbage collection the next call rebuilds the model
class (about 4 ms each: a third of the bot's CPU under load, see bench/README.md). Holding them
here, once per process, keeps them built.
"""
from __future__ import annotations

from typing import Any

from aiogram import methods
from aiogram.methods.base import Response

_PINNED: list[Any] = []


# The methods Oberih calls while it runs (start-up checks need no speed).
USED = (
    methods.GetUpdates, methods.SendMessage, methods.EditMessageText, methods.CopyMessage, methods.DeleteMessages,
    methods.CreateForumTopic, methods.SendMediaGroup, methods.AnswerCallbackQuery,
)


def pin_response_models() -> None:
    """Build Response[T] once for the methods used under load, and keep it."""
    if not _PINNED:
        _PINNED.extend(Response[kind] for kind in {method.__returning__ for method in USED})
