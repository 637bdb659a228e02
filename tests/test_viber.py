"""Viber end to end, over real HTTP both ways: signed webhooks into the running app, the fake Viber
REST API out, and the fake Telegram operator chat where counsellors answer Viber children's cases."""
from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet

from app.build import Service as App, build as build_app
from app.run import serve as run_app
from bot.settings import load_settings
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.viber_api import FakeViber, event, message_event, signed_event, text_event, user
from tests.support import TEST_CONTENT

VIBER_TOKEN = "4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f"
OPERATOR = -1001234567890
COUNSELLOR = 777
CHILD = "01234567890A="


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class World:
    app: App
    tg: FakeTelegram
    viber: FakeViber
    http: aiohttp.ClientSession
    url: str
    seen: dict[str, int] = field(default_factory=dict)  # messages to each child already looked at

    def say(self, key: str, lang: str = "en", **slots: Any) -> str:
        return self.app.engine.say(lang, key, **slots)

    async def post(self, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None,
                   token: str = VIBER_TOKEN) -> tuple[int, bytes]:
        raw, signed = signed_event(token, body)
        async with self.http.post(self.url, data=raw, headers=signed if headers is None else headers) as answer:
            return answer.status, await answer.read()

    async def send(self, child: str, text: str) -> None:
        status, _ = await self.post(text_event(child, text))
        assert status == 200

    async def next_message(self, child: str, match: Any) -> dict[str, Any]:
        """The first message to the child not looked at yet for which match(message) holds."""
        def found(viber: FakeViber) -> dict[str, Any] | None:
            messages = viber.messages_to(child)
            for index in range(self.seen.get(child, 0), len(messages)):
                if match(messages[index]):
                    self.seen[child] = index + 1
                    return messages[index]
            return None
        return await self.viber.wait_for(found)

    async def press(self, child: str, label_key: str) -> dict[str, Any]:
        """Wait for a keyboard with this button, press it (Viber sends its ActionBody as text); return the message."""
        label = self.say(label_key)
        message = await self.next_message(child, lambda m: label in dict(FakeViber.buttons(m)))
        await self.send(child, dict(FakeViber.buttons(message))[label])
        return message

    async def expect_text(self, child: str, text: str) -> dict[str, Any]:
        return await self.next_message(child, lambda m: text in m.get("text", ""))

    async def settled(self, check: Any) -> None:
        """Wait until check() (async) holds, woken each time the inbox processor runs out of work."""
        async with asyncio.timeout(10):
            while True:
                self.app.inbox.idle.clear()
                if await check():
                    return
                await self.app.inbox.idle.wait()


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[World]:
    async with FakeTelegram(token="123:ABC") as tg, FakeViber(VIBER_TOKEN) as viber, aiohttp.ClientSession() as http:
        tg.add_group(OPERATOR, title="Operators", is_forum=True)
        tg.add_member(OPERATOR, COUNSELLOR, "administrator")
        port = _free_port()
        settings = load_settings(
            _env_file=None, telegram_bot_token=tg.token, telegram_api_url=tg.base_url, operator_chat_id=OPERATOR,
            admin_ids=str(COUNSELLOR), viber_auth_token=VIBER_TOKEN, viber_api_url=viber.base_url,
            viber_webhook_url=f"http://127.0.0.1:{port}/viber", web_port=port, data_dir=tmp_path,
            database_url=f"sqlite:///{tmp_path / 'oberih.db'}", data_key=Fernet.generate_key().decode(),
            id_pepper="test-pepper", rate_global_per_second=1000, rate_chat_per_second=1000,
            rate_group_per_minute=100000, content_dir=TEST_CONTENT,
        )
        app = await build_app(settings)
        stop = asyncio.Event()
        running = asyncio.create_task(run_app(app, stop))
        try:
            webhook_set = asyncio.create_task(viber.wait_for(lambda v: v.webhook))
            done, _ = await asyncio.wait({running, webhook_set}, return_when=asyncio.FIRST_COMPLETED)
            if running in done:
                webhook_set.cancel()
                await asyncio.gather(webhook_set, return_exceptions=True)
                running.result()  # raises why the app did not start
            yield World(app, tg, viber, http, settings.viber_webhook_url)
        finally:
            stop.set()
            await asyncio.gather(running, return_exceptions=True)
            await app.close()


async def _inbox_empty(app: App) -> bool:
    async with app.db.transaction() as tx:
        return await tx.inbox.last_external_id("viber") is None


async def _address(app: App, user_id: str) -> Any:
    async with app.db.transaction() as tx:
        conversation = await tx.conversations.get(app.conversations.privacy.pseudonym("viber", user_id))
    return conversation.address if conversation else "no conversation"


async def test_webhook_is_set_with_the_auth_token_and_verified(world: World) -> None:
    call = world.viber.calls_of("set_webhook")[0]
    assert call.auth_header == VIBER_TOKEN and call.status == 0
    assert call.body["url"] == world.url
    assert set(call.body["event_types"]) >= {"subscribed", "unsubscribed", "conversation_started"}


async def test_a_viber_child_reports_and_a_counsellor_answers(world: World) -> None:
    w, child = world, CHILD
    await w.send(child, "/start")
    await w.press(child, "menu.report")
    await w.press(child, "category.bullying")
    await w.expect_text(child, w.say("report.what"))
    await w.send(child, "They post mean comments under all my photos")
    await w.press(child, "platform.instagram")
    await w.press(child, "when.today")
    await w.press(child, "answer.yes")
    await w.press(child, "who.stranger")
    await w.press(child, "who.peer")
    await w.press(child, "age.middle")
    await w.expect_text(child, w.say("report.screenshots"))
    for number in (1, 2):  # Viber pictures arrive as media URLs; the card shows them as an album
        picture = {"type": "picture", "media": f"https://dl-media.viber.com/1/share/2/shot{number}.jpg", "text": ""}
        assert (await w.post(message_event(child, picture)))[0] == 200
        if number == 1:
            await w.expect_text(child, w.say("screenshots.got"))
    got = await w.press(child, "screenshots.done")
    assert got["text"] == w.say("screenshots.got")
    summary = await w.press(child, "summary.correct")
    assert "They post mean comments" in summary["text"]
    await w.press(child, "consent.counsellor")
    await w.press(child, "reply.yes")
    sent = await w.expect_text(child, w.say("report.sent").split("{")[0])
    assert "{case_number}" not in sent["text"] and "{receipt_code}" not in sent["text"]

    # The case card opens a new topic in the operator chat, marked as a Viber case.
    topic = (await w.tg.wait_for(lambda tg: tg.topics(OPERATOR)))[0]
    card = await w.tg.wait_for(lambda tg: next((m for m in tg.sent_to(OPERATOR, topic.thread_id)
                                                  if "viber" in (m.data.get("text") or "")), None))
    async with w.app.db.transaction() as tx:
        case = await tx.cases.by_operator_topic(topic.thread_id)
    assert case is not None and case.channel == "viber" and case.number in card.data["text"]
    assert CHILD not in json.dumps([m.data for m in w.tg.messages_in(OPERATOR)])  # rule 1: no platform id
    await w.tg.wait_for(lambda tg: any(m.kind == "photo" for m in tg.sent_to(OPERATOR, topic.thread_id)))

    # A counsellor (an admin here) takes the case: the child is told, then gets the answer.
    take = next(data for _, data in FakeTelegram.inline_buttons(card) if data and data.startswith("c1:take:"))
    w.tg.user_presses_button(COUNSELLOR, card, take)
    await w.expect_text(child, w.say("notice.taken", case_number=case.number))
    w.tg.user_sends_text(COUNSELLOR, "We are here for you. Can you block them?", chat_id=OPERATOR,
                         thread_id=topic.thread_id)
    answer = await w.expect_text(child, "We are here for you")
    assert answer["text"].startswith(w.say("notice.counsellor_says", text="").strip())
    assert "Counsellor:" in answer["text"] and answer["sender"]["name"]

    # The child writes again: it is relayed into the topic.
    await w.send(child, "Thank you, I blocked them")
    await w.tg.wait_for(lambda tg: any("I blocked them" in (m.data.get("text") or "")
                                       for m in tg.sent_to(OPERATOR, topic.thread_id)))
    assert all(call.auth_header == VIBER_TOKEN for call in w.viber.calls)


@pytest.mark.parametrize("headers", [
    {"X-Viber-Content-Signature": "0" * 64, "Content-Type": "application/json"},
    {"Content-Type": "application/json"},
], ids=["forged", "missing"])
async def test_bad_signatures_are_refused_and_change_nothing(world: World, headers: dict[str, str]) -> None:
    status, _ = await world.post(text_event(CHILD, "/start"), headers=headers)
    assert status == 403
    status, _ = await world.post(text_event(CHILD, "/start"), token="someone-elses-token")
    assert status == 403
    assert await _inbox_empty(world.app)
    assert world.viber.calls_of("send_message") == []


async def test_malformed_and_ignored_events(world: World) -> None:
    assert (await world.post(b"{not json"))[0] == 400
    assert (await world.post({"event": "message", "timestamp": 1, "message_token": 9}))[0] == 400
    for name in ("delivered", "seen", "failed", "webhook", "client_status"):
        status, _ = await world.post(event(name, user_id=CHILD))
        assert status == 200
    assert await _inbox_empty(world.app)


async def test_conversation_started_answers_the_welcome_in_the_response(world: World) -> None:
    status, body = await world.post(event("conversation_started", type="open", user=user(CHILD, "en"),
                                          subscribed=False))
    assert status == 200
    welcome = json.loads(body)
    assert welcome["type"] == "text" and welcome["text"] == world.say("welcome.text")
    [(label, action)] = FakeViber.buttons(welcome)
    assert label == world.say("common.continue") and action.startswith("/")
    assert await _inbox_empty(world.app) and world.viber.calls_of("send_message") == []
    await world.send(CHILD, action)  # the button's press starts the dialog at the menu
    await world.press(CHILD, "menu.report")


async def test_unsupported_messages_get_a_kind_answer(world: World) -> None:
    await world.send(CHILD, "/start")
    await world.expect_text(CHILD, world.say("menu.text"))
    for message in ({"type": "sticker", "sticker_id": 46105}, {"type": "location", "location": {"lat": 50.4, "lon": 30.5}},
                    {"type": "contact", "contact": {"name": "Mom", "phone_number": "+380501234567"}}):
        assert (await world.post(message_event(CHILD, message)))[0] == 200
        answer = await world.expect_text(CHILD, world.say("common.unsupported"))
        assert FakeViber.buttons(answer)  # and the way on, as buttons


async def test_a_redelivered_event_is_handled_once(world: World) -> None:
    body = text_event(CHILD, "/start")
    assert (await world.post(body))[0] == 200
    assert (await world.post(body))[0] == 200  # Viber retries when it did not see our 200 in time
    await world.expect_text(CHILD, world.say("menu.text"))
    await world.send(CHILD, "/menu")
    await world.expect_text(CHILD, world.say("menu.text"))
    assert len([t for t in world.viber.texts_to(CHILD) if t == world.say("menu.text")]) == 2


async def test_unsubscribed_removes_the_address_and_the_topic_is_told(world: World) -> None:
    w, child = world, "unsub-child-1="
    await w.send(child, "/start")
    await w.press(child, "menu.report")
    await w.press(child, "category.scam")
    await w.expect_text(child, w.say("report.what"))
    await w.send(child, "Someone stole my game account")
    for key in ("platform.game", "when.week", "answer.no", "who.stranger", "who.adult", "age.older",
                "screenshots.done", "summary.correct", "consent.counsellor", "reply.yes"):
        await w.press(child, key)
    await w.expect_text(child, w.say("report.sent").split("{")[0])
    topic = (await w.tg.wait_for(lambda tg: tg.topics(OPERATOR)))[0]
    card = await w.tg.wait_for(lambda tg: next((m for m in tg.sent_to(OPERATOR, topic.thread_id)
                                                  if m.data.get("reply_markup")), None))
    async with w.app.db.transaction() as tx:
        case = await tx.cases.by_operator_topic(topic.thread_id)
    w.tg.user_presses_button(COUNSELLOR, card, next(d for _, d in FakeTelegram.inline_buttons(card)
                                                    if d and d.startswith("c1:take:")))
    await w.expect_text(child, w.say("notice.taken", case_number=case.number))

    assert (await w.post(event("unsubscribed", user_id=child)))[0] == 200
    await w.settled(lambda: _address_gone(w.app, child))
    sent_before = len(w.viber.calls_of("send_message"))
    w.tg.user_sends_text(COUNSELLOR, "Are you still there?", chat_id=OPERATOR, thread_id=topic.thread_id)
    undeliverable = w.say("operator.notice.undeliverable", lang=w.app.settings.default_language, reason="")
    await w.tg.wait_for(lambda tg: any(undeliverable.split(":")[0] in (m.data.get("text") or "")
                                       for m in tg.sent_to(OPERATOR, topic.thread_id)))
    assert len(w.viber.calls_of("send_message")) == sent_before  # nothing was even tried
    assert not any("still there" in text for text in w.viber.texts_to(child))


async def _address_gone(app: App, user_id: str) -> bool:
    return await _address(app, user_id) is None
