"""What the bot's port answers strangers: /metrics only with its token (or locally), and a correctly
signed Viber callback that is malformed in any way gets 400 — never a 500, and nothing is stored."""
from __future__ import annotations

import copy
import json
from typing import Any

import aiohttp
import pytest

from bot.web import _is_loopback
from tests.fakes.viber_api import event, text_event, user
from tests.support import bot_settings, running_bot
from tests.test_viber import CHILD, World, _inbox_empty, world  # noqa: F401 - `world` is a fixture

METRICS_TOKEN = "m" * 40


async def get_metrics(app: Any, headers: dict[str, str] | None = None) -> int:
    host, port = app.runner.addresses[0][:2]
    async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/metrics", headers=headers) as answer:
        return answer.status


async def test_metrics_answer_only_local_requests_when_no_token_is_set(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        assert await get_metrics(app) == 200
        for proxied in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"},
                        {"X-Real-IP": "203.0.113.9"}):
            assert await get_metrics(app, proxied) == 403  # a reverse proxy on this host passed it on


async def test_metrics_want_the_token_as_a_bearer_token(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg, metrics_token=METRICS_TOKEN)) as app:
        for refused in (None, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {METRICS_TOKEN}"},
                        {"Authorization": f"Bearer {METRICS_TOKEN[:-1]}"}, {"Authorization": METRICS_TOKEN}):
            assert await get_metrics(app, refused) == 401  # even from this very host
        assert await get_metrics(app, {"Authorization": f"Bearer {METRICS_TOKEN}"}) == 200


@pytest.mark.parametrize(("remote", "local"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.5", False), ("203.0.113.9", False), ("::ffff:10.0.0.5", False), ("2001:db8::1", False),
    ("", False), (None, False),
])
def test_only_loopback_addresses_count_as_local(remote, local):
    assert _is_loopback(remote) is local


# -- malformed Viber callbacks ------------------------------------------------------------------------

NOT_TEXT = [None, 0, 1.5, True, [], {}, ["x"], {"id": "x"}]
NOT_OBJECT = [None, "x", 0, True, [], ["x"]]
# For each callback Oberih reads: the fields it reads, what they must be, and whether they may be absent.
READ = {
    "message": [(("event",), "text", True), (("sender",), "object", True), (("sender", "id"), "text", True),
                (("sender", "language"), "text", False), (("message",), "object", True),
                (("message", "type"), "text", True), (("message", "text"), "text", False),
                (("message_token",), "token", False)],
    "subscribed": [(("user",), "object", True), (("user", "id"), "text", True), (("message_token",), "token", False)],
    "unsubscribed": [(("user_id",), "text", True), (("message_token",), "token", False)],
    "conversation_started": [(("user",), "object", True), (("user", "language"), "text", False)],
}


def valid(name: str) -> dict[str, Any]:
    return {
        "message": lambda: text_event(CHILD, "hello"),
        "subscribed": lambda: event("subscribed", user=user(CHILD)),
        "unsubscribed": lambda: event("unsubscribed", user_id=CHILD),
        "conversation_started": lambda: event("conversation_started", type="open", user=user(CHILD), subscribed=False),
    }[name]()


def changed(body: dict[str, Any], path: tuple[str, ...], value: Any = KeyError) -> dict[str, Any]:
    """A copy of body with the field at path set to value (removed if value is KeyError)."""
    body = copy.deepcopy(body)
    *parents, last = path
    holder = body
    for name in parents:
        holder = holder[name]
    if value is KeyError:
        del holder[last]
    else:
        holder[last] = value
    return body


def malformed() -> list[tuple[str, bytes]]:
    """(what is wrong, body) for every way a callback can be malformed in a field Oberih reads."""
    cases: list[tuple[str, bytes]] = []
    for name, fields in READ.items():
        for path, kind, required in fields:
            wrong = {"text": NOT_TEXT, "object": NOT_OBJECT, "token": [1.5, True, False, [], {}, "", "9" * 129]}[kind]
            for value in wrong:
                if value is None and not required:
                    continue  # an optional field given as null is absent
                cases.append((f"{name}: {'.'.join(path)} = {value!r}", json.dumps(changed(valid(name), path, value))))
            if required:
                cases.append((f"{name}: {'.'.join(path)} missing", json.dumps(changed(valid(name), path))))
            if kind == "text" and required:
                cases.append((f"{name}: {'.'.join(path)} empty", json.dumps(changed(valid(name), path, ""))))
        whole = json.dumps(valid(name)).encode()
        cases += [(f"{name}: cut at {cut}", whole[:cut]) for cut in range(0, len(whole) - 1, 9)]
    cases += [
        ("an array", b"[]"), ("a string", b'"message"'), ("null", b"null"), ("a number", b"7"),
        ("not UTF-8", b'{"event": "message", "x": "\xff\xfe"}'), ("deeply nested", b"[" * 100_000 + b"]" * 100_000),
        ("an empty body", b""), ("an event that is not text", json.dumps(changed(valid("message"), ("event",), 5))),
    ]
    return [(what, body if isinstance(body, bytes) else body.encode()) for what, body in cases]


async def test_every_malformed_signed_callback_gets_400_and_stores_nothing(world: World) -> None:  # noqa: F811 - the fixture
    answers = {what: (await world.post(body))[0] for what, body in malformed()}
    wrong = {what: status for what, status in answers.items() if status != 400}
    assert not wrong, f"{len(wrong)} of {len(answers)} malformed callbacks were not refused: {wrong}"
    assert await _inbox_empty(world.app)
    assert world.viber.calls_of("send_message") == []
    await world.send(CHILD, "/start")  # the webhook still works
    assert not await _inbox_empty(world.app)
