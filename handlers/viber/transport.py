"""The Viber transport: messages to children as Viber REST calls (blocking, so run off the event loop),
and Viber's errors as the delivery's `Failure`s. Viber writes only to children; it cannot delete."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from viberbot.api.messages import FileMessage, PictureMessage

from bot.transport import Address, Failure, OutgoingFile, Pace, Rows, SendError, StaffFile
from dialogs.model import MediaKind
from handlers.viber.api import GONE, REJECTED, TOO_MANY_REQUESTS, ViberApi, ViberHTTPError, ViberStatusError
from handlers.viber.media import MediaStore, describe
from handlers.viber.render import TEXT_LIMIT, text_messages

log = logging.getLogger(__name__)

RATE_LIMIT_WAIT = 30.0  # Viber says "too many requests" without saying how long to wait
PICTURE_LIMIT = 1024 * 1024  # larger pictures go as files (Viber's picture limit)
PICTURE_TYPES = ("jpg", "png", "gif")
FetchFile = Callable[[str], Awaitable[bytes]]


class ViberTransport:
    can_delete = False  # Viber bots cannot delete messages
    text_limit = TEXT_LIMIT

    def __init__(self, api: ViberApi, media: MediaStore, fetch_file: FetchFile | None = None) -> None:
        """`fetch_file` downloads a counsellor's Telegram file by its file id."""
        self.api, self.media, self.fetch_file = api, media, fetch_file

    async def send_text(self, to: Address, text: str, buttons: Rows = (), *, protect: bool = False) -> list[int]:
        rows = [[(button.label, button.payload) for button in row] for row in buttons]
        return await self._send(to, text_messages(text, rows or None))

    async def send_files(self, to: Address, files: Sequence[OutgoingFile], caption: str | None = None, *,
                         protect: bool = False) -> list[int]:
        raise SendError(Failure.REFUSED, "Viber takes no files from the bot but staff files")

    async def pass_on(self, to: Address, file: StaffFile, caption: str, unavailable: str, pace: Pace) -> list[int]:
        data = await self._fetch(file.media.file_ref)
        if data is None:
            text = "\n".join(filter(None, (caption, unavailable)))
            return await self._send(to, text_messages(text)) if text else []
        ext, content_type = describe(data)
        token, url = self.media.put(data, content_type)
        try:
            if file.media.kind is MediaKind.PHOTO and ext in PICTURE_TYPES and len(data) <= PICTURE_LIMIT:
                message: Any = PictureMessage(media=url, text="")
            else:
                message = FileMessage(media=url, size=len(data), file_name=f"file.{ext}")
            ids = []
            for index, part in enumerate([*(text_messages(caption) if caption else []), message]):
                if index:
                    await pace()
                ids += await self._send(to, [part])
            return ids
        except BaseException:
            self.media.discard(token)  # not sent: a retry puts the file up again under a new URL
            raise

    async def delete_messages(self, to: Address, message_ids: Sequence[int]) -> None:
        return None  # Viber cannot: the courier tells the child how to hide the chat instead

    async def send_picture(self, to: Address, picture: bytes, name: str, caption: str) -> list[int]:
        raise SendError(Failure.REFUSED, "no staff chats on Viber")

    async def edit_text(self, to: Address, message_id: int, text: str, buttons: Rows = ()) -> None:
        raise SendError(Failure.REFUSED, "no staff chats on Viber")

    async def open_topic(self, chat: int, name: str) -> int:
        raise SendError(Failure.REFUSED, "no staff chats on Viber")

    async def reopen_topic(self, chat: int, topic: int) -> None:
        raise SendError(Failure.REFUSED, "no staff chats on Viber")

    async def delete_topic(self, chat: int, topic: int) -> None:
        raise SendError(Failure.REFUSED, "no staff chats on Viber")

    async def _fetch(self, file_ref: str) -> bytes | None:
        if self.fetch_file is None or not file_ref:
            return None
        try:
            return await self.fetch_file(file_ref)
        except SendError as error:
            if error.failure in (Failure.NETWORK, Failure.SERVER, Failure.RATE_LIMITED):
                raise  # Telegram's trouble, not the file's: tried again later
            log.warning("staff file could not be fetched from Telegram; sending the caption only")
            return None  # too big or gone: retrying would not help

    async def _send(self, to: Address, messages: list[Any]) -> list[int]:
        # Message tokens, remembered like Telegram message ids: a quick exit then knows there is a chat to hide.
        tokens = []
        with _mapped():
            for message in messages:
                tokens.append(int(await asyncio.to_thread(self.api.send, str(to.chat), message)))
        return tokens


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """Viber's answers as the delivery's `Failure`s (https://developers.viber.com/docs/api/rest-bot-api/#error-codes)."""
    try:
        yield
    except ViberStatusError as error:
        if error.status in GONE:
            raise SendError(Failure.RECIPIENT_GONE, f"child unreachable on Viber: {GONE[error.status]}") from None
        if error.status == TOO_MANY_REQUESTS:
            raise SendError(Failure.RATE_LIMITED, "429", retry_after=RATE_LIMIT_WAIT) from None
        if error.status in REJECTED:
            raise SendError(Failure.REFUSED, f"rejected by Viber: {REJECTED[error.status]}") from None
        raise SendError(Failure.SERVER, f"viber status {error.status}") from None
    except ViberHTTPError as error:
        if error.status == 429:
            raise SendError(Failure.RATE_LIMITED, "429", retry_after=error.retry_after or RATE_LIMIT_WAIT) from None
        raise SendError(Failure.SERVER if error.status >= 500 else Failure.REFUSED, f"viber http {error.status}") from None
    except (OSError, TimeoutError) as error:
        raise SendError(Failure.NETWORK, type(error).__name__) from None
