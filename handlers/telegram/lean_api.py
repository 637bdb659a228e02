"""The Bot API calls of every dialog step and every new case, made without aiogram's models
(bench/README.md, finding 9).

For each call aiogram validates a pydantic model of it, form-encodes it (the buttons' JSON quoted
character by character), and validates every field of what Telegram answers. For a child's message
with buttons that is about 0.7 ms of CPU; a JSON body, and reading only the message id back, take
about 0.3 ms. The same aiohttp session carries both kinds of call. A failed call is still judged by
aiogram's own `check_response`, so callers see exactly the errors aiogram raises
(TelegramRetryAfter, TelegramForbiddenError, TelegramNetworkError…).
"""
from __future__ import annotations

import json
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import AnswerCallbackQuery, CreateForumTopic, SendMessage, TelegramMethod
from aiogram.types import InlineKeyboardMarkup
from aiohttp import ClientError

JSON_BODY = {"Content-Type": "application/json"}
NO_PREVIEW = {"is_disabled": True}
_to_json = json.JSONEncoder(ensure_ascii=False).encode  # (json.dumps with options builds one per call)


async def send_text(bot: Bot, chat_id: int, text: str, buttons: list | None = None,
                    markup: InlineKeyboardMarkup | None = None, **options: Any) -> int:
    """sendMessage without a link preview; `buttons` are rows of (label, callback data), or `markup`
    aiogram's keyboard; `options` more of sendMessage's parameters (message_thread_id…). The message id."""
    params: dict[str, Any] = {"chat_id": chat_id, "text": text, "link_preview_options": NO_PREVIEW, **options}
    if buttons:
        params["reply_markup"] = {"inline_keyboard": [
            [{"text": label, "callback_data": data} for label, data in row] for row in buttons]}
    elif markup is not None:
        params["reply_markup"] = markup.model_dump(mode="json", exclude_none=True)
    return int((await call(bot, SendMessage, params))["message_id"])


async def create_topic(bot: Bot, chat_id: int, name: str) -> int:
    """createForumTopic; the new topic's thread id."""
    return int((await call(bot, CreateForumTopic, {"chat_id": chat_id, "name": name}))["message_thread_id"])


async def answer_callback(bot: Bot, callback_query_id: str) -> None:
    """answerCallbackQuery with nothing to show: the button's spinner stops."""
    await call(bot, AnswerCallbackQuery, {"callback_query_id": callback_query_id})


async def call(bot: Bot, method: type[TelegramMethod[Any]], params: dict[str, Any]) -> Any:
    """POST `params` as JSON to `method`; the result as plain JSON, or aiogram's error for the answer."""
    session = bot.session
    client = await session.create_session()
    url = session.api.api_url(token=bot.token, method=method.__api_method__)
    body = _to_json(params).encode()
    try:
        async with client.post(url, data=body, headers=JSON_BODY, timeout=session.timeout) as response:
            status, content = response.status, await response.text()
    except TimeoutError as error:  # the same errors as aiogram's own session raises
        raise TelegramNetworkError(method=method(**params), message="Request timeout error") from error
    except ClientError as error:
        raise TelegramNetworkError(method=method(**params), message=f"{type(error).__name__}: {error}") from error
    if 200 <= status < 300:
        try:
            answer = json.loads(content)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("ok") is True and "result" in answer:
            return answer["result"]
    # Anything else is for aiogram to judge: it raises the typed error it would have raised itself.
    return session.check_response(bot, method(**params), status, content).result
