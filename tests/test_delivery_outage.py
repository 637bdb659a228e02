"""Outages lose nothing: a staff chat that cannot be written to for a while is named by /healthz
after five minutes, everything for it waits, and when it comes back admins get one line saying how
many items were held and for how long."""
from __future__ import annotations

from datetime import datetime, timezone

import aiohttp
import pytest

from bot.delivery.health import ChatHealth
from bot.transport import Failure
from storage import Kind, OutboxItem, OutboxStatus, Target
from tests.fakes.telegram_api import FakeTelegram
from tests.support import ADMIN, OPERATOR, Child, bot_settings, report, running_bot
from tests.test_delivery_lanes import FOREVER, fast_clock

CHILD = 621


class Manual:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def item(item_id: int, target: Target = Target.OPERATOR, lane: str | None = None) -> OutboxItem:
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return OutboxItem(id=item_id, target=target, channel="telegram", lane=lane or f"{target}:1", conversation_key=None,
                      case_id=1, kind=Kind.CASE_CARD, payload={}, priority=1, status=OutboxStatus.PENDING,
                      attempts=0, next_attempt_at=at, created_at=at, sent_at=None, result=None, error=None,
                      claimed_until=None, claimed_by=None)


def test_one_refused_message_is_no_outage_and_a_short_blip_is_not_told() -> None:
    clock = Manual()
    health = ChatHealth(clock)
    health.failed(item(1), Failure.REFUSED, "wrong file")
    health.failed(item(2, Target.CHILD), Failure.NETWORK, "network")
    clock.now += 3600
    assert health.problems() == []
    health.failed(item(3), Failure.SERVER, "telegram server error")
    clock.now += 299
    assert health.problems() == [] and health.sent(item(4)) is None  # back within five minutes: not told


def test_a_long_outage_is_named_and_its_end_told_once() -> None:
    clock = Manual()
    health = ChatHealth(clock)
    for item_id in (1, 2, 2, 3):
        health.failed(item(item_id), Failure.NETWORK, "network")
    clock.now += 300
    assert health.problems() == ["operator chat unreachable for 300 s (network)"]
    back = health.sent(item(1))
    assert back is not None and len(back.held) == 3 and back.seconds == 300
    assert health.sent(item(2)) is None and health.problems() == []


@pytest.mark.parametrize("failure", [500, "drop"])
async def test_healthz_names_an_unreachable_operator_chat_and_admins_hear_when_it_is_back(tmp_path, tg: FakeTelegram,
                                                                                         failure: int | str) -> None:
    async with running_bot(bot_settings(tmp_path, tg), clock=fast_clock()) as app:
        clock = Manual()
        app.worker.health.clock = clock
        host, port = app.runner.addresses[0][:2]
        await report(Child(app, tg, CHILD))
        number = tg.topics(OPERATOR)[-1].name.split(" · ")[0]
        # Now the operator chat is out of reach while two notices of the case are queued.
        if failure == "drop":
            tg.drop_next("sendMessage", FOREVER)
        else:
            tg.fail_next("sendMessage", FOREVER, code=500)
        async with app.db.transaction() as tx:
            case = await tx.cases.by_number(number)
            await app.outbox.notice(tx, case, "operator.notice.no_reply")
            await app.outbox.notice(tx, case, "operator.notice.case_closed")
        tries = len(tg.calls_of("sendMessage"))
        await tg.wait_for(lambda t: len(t.calls_of("sendMessage")) >= tries + 2, what="the notice retried")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{host}:{port}/healthz") as response:
                assert response.status == 200  # not five minutes yet
            clock.now += 301
            async with http.get(f"http://{host}:{port}/healthz") as response:
                body = await response.json()
                assert response.status == 503 and body["problems"][0].startswith("operator chat unreachable for 30")
            tg.clear_faults()
            back = app.engine.say("en", "operator.chat_back", role="operator", count=2, minutes=6)
            await tg.wait_for(lambda t: any(m.text == back for m in t.messages_in(OPERATOR) if m.thread_id is None),
                              what="one line in General")
            notices = [app.engine.say("en", key) for key in ("operator.notice.no_reply", "operator.notice.case_closed")]
            await tg.wait_for(lambda t: all(n in [m.text for m in t.messages_in(OPERATOR)] for n in notices),
                              what="nothing lost")
            async with http.get(f"http://{host}:{port}/healthz") as response:
                assert response.status == 200
        assert [m.text for m in tg.messages_in(OPERATOR) if m.text == back] == [back]  # once
        assert not any("cannot post" in (m.text or "") for m in tg.sent_to(ADMIN))  # a 5xx is not "bot removed"


def test_a_chat_gets_through_while_an_item_was_sent_in_the_last_minute() -> None:
    clock = Manual()
    health = ChatHealth(clock)
    assert not health.getting_through(item(2))
    health.sent(item(1))
    clock.now += 59
    assert health.getting_through(item(2)) and not health.getting_through(item(3, Target.CHILD))
    assert not health.getting_through(item(4, lane="operator@kyiv:1"))  # a region's own chat is a chat of its own
    clock.now += 2
    assert not health.getting_through(item(2))
