"""Items for Viber children through the courier and the Viber transport, against the fake Viber API:
limits, failures, staff files."""
from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.fernet import Fernet

from bot.delivery import Courier
from bot.privacy import Privacy
from bot.settings import Settings
from bot.staff_chats import StaffChats
from bot.transport import Failure, SendError
from dialogs.engine import Engine
from dialogs.model import EventKind, MediaKind
from dialogs.validate import load_content
from handlers.viber.api import ViberApi
from handlers.viber.convert import message_event
from handlers.telegram.channel import make_bot
from handlers.telegram.transport import TelegramTransport
from handlers.viber.media import MediaStore
from dialogs.render import split_text
from handlers.viber.render import MAX_BUTTONS, TEXT_LIMIT, keyboard
from handlers.viber.transport import ViberTransport
from storage import Database, Kind, Target
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.viber_api import FakeViber

TOKEN = "sender-test-token"
CHILD = "viber-child-id=="


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Limits:
    def __init__(self) -> None:
        self.extra = 0

    async def acquire_extra(self, item: Any) -> None:
        self.extra += 1


def item(kind: str, payload: dict[str, Any], address: dict | None = None, target: str = "child") -> Any:
    """An outbox item as a round reads it: a child's comes with the child's address."""
    if address is None and target == "child":
        address = {"viber_id": CHILD}
    return SimpleNamespace(id=1, target=Target(target), channel="viber", lane="child:k", kind=Kind(kind),
                           payload=payload, conversation_key="k", case_id=None, attempts=0, address=address)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_content(Settings().content_dir), "UA", "uk")


@pytest.fixture
async def env(tmp_path, engine: Engine) -> AsyncIterator[SimpleNamespace]:
    """The fake Viber API, a database, a media route on a local web server, and the sender."""
    port = _free_port()
    media = MediaStore(f"http://127.0.0.1:{port}/viber")
    web_app = web.Application()
    path, handler = media.route
    web_app.router.add_get(path, handler)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}", Privacy([Fernet.generate_key().decode()], "p"))
    await db.start()
    api = None
    try:
        async with FakeViber(TOKEN) as viber:
            api = ViberApi(TOKEN, "Oberih", viber.base_url)
            files: dict[str, bytes] = {}

            async def fetch_file(file_id: str) -> bytes:
                return files[file_id]

            transport = ViberTransport(api, media, fetch_file)
            sender = Courier(db, engine, {"viber": transport}, StaffChats(-100777))
            yield SimpleNamespace(viber=viber, sender=sender, transport=transport, media=media, db=db, files=files,
                                  engine=engine, port=port)
    finally:
        if api is not None:
            api.close()
        await db.close()
        await runner.cleanup()


async def test_a_long_text_is_split_and_the_keyboard_goes_last(env: Any) -> None:
    text = ("line of words\n" * 1200).strip()  # ~16 800 characters: three messages
    rows = [[("One", "o1|s|0"), ("Two", "o1|s|1")], [("Back", "o1|s|back")]]
    limits = Limits()
    result = await env.sender.send(item("say", {"text": text, "buttons": rows}), limits)
    sent = env.viber.messages_to(CHILD)
    assert len(sent) == 3 and limits.extra == 2 and len(result.message_ids) == 3
    assert all(len(m["text"]) <= TEXT_LIMIT for m in sent)
    assert "\n".join(m["text"] for m in sent) == text
    assert [bool(m.get("keyboard")) for m in sent] == [False, False, True]
    assert FakeViber.buttons(sent[-1]) == [("One", "o1|s|0"), ("Two", "o1|s|1"), ("Back", "o1|s|back")]
    assert [b["Columns"] for b in sent[-1]["keyboard"]["Buttons"]] == [3, 3, 6]


def test_keyboards_stay_within_vibers_limits() -> None:
    rows = [[(f"Language {i}", f"o1|language|lang:{i}")] for i in range(30)] + [[("Back", "o1|language|back")]]
    board = keyboard(rows)
    assert len(board["Buttons"]) == MAX_BUTTONS
    assert board["Buttons"][-1]["ActionBody"] == "o1|language|back"  # the way out is never dropped
    assert board["Buttons"][0]["ActionBody"] == "o1|language|lang:0"
    wide = keyboard([[(str(i), f"o1|s|{i}") for i in range(5)]])
    assert [b["Columns"] for b in wide["Buttons"]] == [3, 3, 3, 3, 6]
    assert all(b["ActionType"] == "reply" and b["Rows"] == 1 for b in wide["Buttons"])
    assert keyboard([]) is None
    assert split_text("short", TEXT_LIMIT) == ["short"]


@pytest.mark.parametrize("status", [6, 5])
async def test_a_child_who_is_not_subscribed_is_out_of_reach(env: Any, status: int) -> None:
    env.viber.fail_next("send_message", status=status)
    with pytest.raises(SendError) as failure:
        await env.sender.send(item("staff_text", {"text": "Hello"}), Limits())
    assert failure.value.failure is Failure.RECIPIENT_GONE and CHILD not in failure.value.reason
    env.viber.unsubscribe(CHILD)
    with pytest.raises(SendError) as failure:
        await env.sender.send(item("staff_text", {"text": "Hello"}), Limits())
    assert failure.value.failure is Failure.RECIPIENT_GONE


async def test_rate_limits_server_errors_and_network_errors_are_named(env: Any) -> None:
    env.viber.fail_next("send_message", status=12)
    with pytest.raises(SendError) as limited:
        await env.sender.send(item("staff_text", {"text": "Hello"}), Limits())
    assert limited.value.failure is Failure.RATE_LIMITED and limited.value.retry_after
    env.viber.fail_next("send_message", http=429)
    with pytest.raises(SendError) as limited:
        await env.sender.send(item("staff_text", {"text": "Hello"}), Limits())
    assert limited.value.failure is Failure.RATE_LIMITED and limited.value.retry_after
    env.viber.fail_next("send_message", http=503)
    with pytest.raises(SendError) as server:
        await env.sender.send(item("staff_text", {"text": "Hello"}), Limits())
    assert server.value.failure is Failure.SERVER
    env.transport.api = ViberApi(TOKEN, "Oberih", f"http://127.0.0.1:{_free_port()}/pa")  # nobody listens there
    try:
        with pytest.raises(SendError) as network:
            await env.sender.send(item("staff_text", {"text": "Hello"}), Limits())
    finally:
        env.transport.api.close()
    assert network.value.failure is Failure.NETWORK


async def test_without_an_address_the_child_is_out_of_reach(env: Any) -> None:
    await env.sender.send(item("staff_text", {"text": "Hi"}), Limits())
    assert env.viber.texts_to(CHILD) == ["Hi"]
    with pytest.raises(SendError) as failure:
        await env.sender.send(item("staff_text", {"text": "Hi"}, address={}), Limits())
    assert failure.value.failure is Failure.RECIPIENT_GONE
    with pytest.raises(SendError) as failure:
        await env.transport.open_topic(-100777, "a case")  # no staff chats on Viber
    assert failure.value.failure is Failure.REFUSED


async def test_delete_messages_sends_the_advice_instead(env: Any) -> None:
    result = await env.sender.send(item("delete_messages", {"message_ids": [1, 2], "lang": "en"}), Limits())
    assert env.viber.texts_to(CHILD) == [env.engine.say("en", "exit.viber_advice")]
    assert result.message_ids


async def test_a_counsellors_photo_is_served_once_to_viber(env: Any) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"x" * 1000
    env.files["TG-PHOTO-1"] = jpeg
    payload = {"chat": "operator", "message_id": 5, "kind": "photo", "file_ref": "TG-PHOTO-1",
               "caption": "💬 Counsellor\nThis is how to block someone"}
    limits = Limits()
    await env.sender.send(item("staff_copy", payload), limits)
    caption, picture = env.viber.messages_to(CHILD)
    assert caption["text"] == payload["caption"] and limits.extra == 1
    assert picture["type"] == "picture" and picture["media"].startswith(f"http://127.0.0.1:{env.port}/media/")
    assert env.viber.calls_of("send_message")[-1].fetched == jpeg  # Viber downloaded it…
    assert len(env.media) == 0  # …and it is gone
    async with aiohttp.ClientSession() as http, http.get(picture["media"]) as again:
        assert again.status == 404

    env.files["TG-DOC-1"] = b"%PDF-1.7 ..."
    await env.sender.send(item("staff_copy", {**payload, "kind": "document", "file_ref": "TG-DOC-1"}), Limits())
    document = env.viber.messages_to(CHILD)[-1]
    assert document["type"] == "file" and document["file_name"].endswith(".pdf") and document["size"] == 12


async def test_without_a_file_fetcher_only_the_caption_goes(env: Any) -> None:
    env.transport.fetch_file = None
    payload = {"chat": "operator", "message_id": 5, "kind": "photo", "file_ref": "X", "caption": "💬 Counsellor"}
    await env.sender.send(item("staff_copy", payload), Limits())
    [message] = env.viber.messages_to(CHILD)
    assert message["type"] == "text" and message["text"].startswith("💬 Counsellor")
    assert env.engine.say("uk", "notice.viber_file_unavailable") in message["text"]  # the note, in the child's language
    assert len(env.media) == 0


async def test_the_telegram_transport_downloads_a_staff_file_by_its_file_id() -> None:
    async with FakeTelegram(token="123:ABC") as tg:
        tg.add_group(-100777, "Operators")
        sent = tg.user_sends_document(5, chat_id=-100777)
        bot = make_bot(Settings(_env_file=None, telegram_bot_token=tg.token, telegram_api_url=tg.base_url,
                                operator_chat_id=-100777))
        try:
            data = await TelegramTransport(bot).fetch_file(sent.data["document"]["file_id"])
        finally:
            await bot.session.close()
    assert data == tg.files[sent.data["document"]["file_id"]].content


def test_media_urls_expire_unfetched() -> None:
    now = [0.0]
    store = MediaStore("https://bot.example.org/hooks/viber?x=1", clock=lambda: now[0])
    token, url = store.put(b"data", "image/jpeg")
    assert url == f"https://bot.example.org/media/{token}" and len(token) >= 40
    now[0] += 15 * 60 + 1
    assert len(store) == 0


@pytest.mark.parametrize(("message", "kind", "text"), [
    ({"type": "text", "text": "o1|category|2"}, EventKind.BUTTON, "o1|category|2"),
    ({"type": "text", "text": "/Start now"}, EventKind.COMMAND, "start"),
    ({"type": "text", "text": "hello"}, EventKind.TEXT, "hello"),
    ({"type": "url", "media": "https://instagram.com/someone"}, EventKind.TEXT, "https://instagram.com/someone"),
])
def test_texts_buttons_and_commands(message: dict, kind: EventKind, text: str) -> None:
    event = message_event(message, "en")
    assert (event.kind, event.text, event.language_hint) == (kind, text, "en")


@pytest.mark.parametrize(("message", "kind", "media"), [
    ({"type": "picture", "media": "https://dl/p.jpg", "text": "look"}, EventKind.MEDIA, MediaKind.PHOTO),
    ({"type": "video", "media": "https://dl/v.mp4", "size": 10}, EventKind.MEDIA, MediaKind.VIDEO),
    ({"type": "file", "media": "https://dl/f.pdf", "file_name": "f.pdf", "size": 3}, EventKind.MEDIA, MediaKind.DOCUMENT),
    ({"type": "sticker", "sticker_id": 1}, EventKind.UNSUPPORTED, MediaKind.STICKER),
    ({"type": "location", "location": {"lat": 1, "lon": 2}}, EventKind.UNSUPPORTED, MediaKind.LOCATION),
    ({"type": "contact", "contact": {"name": "A", "phone_number": "1"}}, EventKind.UNSUPPORTED, MediaKind.CONTACT),
    ({"type": "rich_media", "rich_media": {}}, EventKind.UNSUPPORTED, MediaKind.OTHER),
    ({"type": "something_new"}, EventKind.UNSUPPORTED, MediaKind.OTHER),
])
def test_media_and_unsupported(message: dict, kind: EventKind, media: MediaKind) -> None:
    event = message_event(message)
    assert event.kind is kind and event.media is not None and event.media.kind is media
    if kind is EventKind.MEDIA:
        assert event.media.file_ref == message["media"]
