"""The retry policy as a table: every failure, for a child and for a staff chat, early and late."""
from __future__ import annotations

import pytest

from bot.delivery.policy import (
    KEEP_SECONDS, REFUSED_TRIES, STAFF_CHAT_RETRY, UNKNOWN_TRIES, Decision, Verdict, as_send_error, decide, metrics_label,
)
from bot.transport import Failure, SendError
from storage import Target

MAX = 30
RETRY, GIVE_UP = Verdict.RETRY, Verdict.GIVE_UP
CHILD, STAFF = Target.CHILD, Target.OPERATOR
DAY = 86400.0


def no_jitter() -> float:
    return 0.0


@pytest.mark.parametrize(("failure", "target", "attempt", "expected"), [
    # The platform asked to wait: exactly that long, whatever the attempt.
    (Failure.RATE_LIMITED, CHILD, 1, Decision(RETRY, 7.0)),
    (Failure.RATE_LIMITED, STAFF, MAX + 5, Decision(RETRY, 7.0)),
    # A child out of reach: given up at once.
    (Failure.RECIPIENT_GONE, CHILD, 1, Decision(GIVE_UP)),
    (Failure.NO_ACCESS, CHILD, 1, Decision(GIVE_UP)),
    # One message the platform refuses (a wrong file, a deleted topic that cannot be recreated): a few
    # tries for every target, then the lane moves on; admins are not told the chat is unreachable.
    (Failure.REFUSED, CHILD, 1, Decision(RETRY, 2.0)),
    (Failure.REFUSED, CHILD, REFUSED_TRIES, Decision(GIVE_UP)),
    (Failure.REFUSED, STAFF, 1, Decision(RETRY, 2.0)),
    (Failure.REFUSED, STAFF, 2, Decision(RETRY, 4.0)),
    (Failure.REFUSED, STAFF, REFUSED_TRIES, Decision(GIVE_UP)),
    (Failure.TOPIC_GONE, Target.POLICE, REFUSED_TRIES, Decision(GIVE_UP)),
    (Failure.TOPIC_CLOSED, STAFF, 1, Decision(RETRY, 2.0)),
    # A staff chat the bot cannot write to: waited out (at least every minute), admins told.
    (Failure.NO_ACCESS, STAFF, 1, Decision(RETRY, 2.0, tell_admins=True)),
    (Failure.NO_ACCESS, STAFF, MAX, Decision(RETRY, STAFF_CHAT_RETRY, tell_admins=True)),
    (Failure.RECIPIENT_GONE, Target.POLICE, MAX, Decision(RETRY, STAFF_CHAT_RETRY, tell_admins=True)),
    # Trouble of the platform or the network: exponential back-off capped at five minutes, never a count.
    (Failure.SERVER, CHILD, 1, Decision(RETRY, 2.0)),
    (Failure.NETWORK, STAFF, 3, Decision(RETRY, 8.0)),
    (Failure.SERVER, STAFF, MAX, Decision(RETRY, 300.0)),
    (Failure.NETWORK, CHILD, 10 * MAX, Decision(RETRY, 300.0)),
    # A failure nobody named (a bug): about a minute of tries, then given up.
    (Failure.CHAT_MOVED, STAFF, 1, Decision(RETRY, 2.0)),
    (Failure.UNKNOWN, CHILD, UNKNOWN_TRIES - 1, Decision(RETRY, 32.0)),
    (Failure.UNKNOWN, CHILD, UNKNOWN_TRIES, Decision(GIVE_UP)),
])
def test_what_happens_after_a_failure(failure: Failure, target: Target, attempt: int, expected: Decision) -> None:
    error = SendError(failure, retry_after=7 if failure is Failure.RATE_LIMITED else None)
    assert decide(error, target, attempt, DAY, KEEP_SECONDS, no_jitter) == expected


@pytest.mark.parametrize("failure", [Failure.SERVER, Failure.NETWORK, Failure.NO_ACCESS])
def test_an_outage_is_waited_out_for_the_retention_period_then_given_up(failure: Failure) -> None:
    for target in (CHILD, STAFF) if failure is not Failure.NO_ACCESS else (STAFF,):
        assert decide(SendError(failure), target, 500, 89 * DAY, 90 * DAY, no_jitter).verdict is RETRY
        assert decide(SendError(failure), target, 500, 90 * DAY, 90 * DAY, no_jitter) == Decision(GIVE_UP)


@pytest.mark.parametrize("failure", [Failure.SERVER, Failure.NETWORK])
def test_a_5xx_for_one_item_while_others_get_through_is_that_items_trouble(failure: Failure) -> None:
    """A file Telegram answers with 500 every time, while the chat takes everything else: after about
    a minute of tries the item is given up (its loss told), and the lane moves on."""
    error = SendError(failure)
    assert decide(error, STAFF, UNKNOWN_TRIES - 1, DAY, KEEP_SECONDS, no_jitter, others_get_through=True).verdict is RETRY
    assert decide(error, STAFF, UNKNOWN_TRIES, DAY, KEEP_SECONDS, no_jitter, others_get_through=True) == Decision(GIVE_UP)
    assert decide(error, CHILD, MAX, DAY, KEEP_SECONDS, no_jitter, others_get_through=False).verdict is RETRY  # an outage


def test_nothing_waits_more_than_two_minutes_behind_an_item_that_will_be_given_up() -> None:
    """The sum of the waits before an item that is not an outage is given up (jitter included)."""
    for failure in (Failure.REFUSED, Failure.TOPIC_GONE, Failure.UNKNOWN, Failure.CHAT_MOVED):
        waited, attempt = 0.0, 1
        while (decision := decide(SendError(failure), STAFF, attempt, waited, KEEP_SECONDS, lambda: 1.0)).verdict is RETRY:
            waited, attempt = waited + decision.delay, attempt + 1
        assert waited < 120, failure


def test_every_failure_has_a_decision_for_every_target() -> None:
    for failure in Failure:
        for target in Target:
            for attempt in (1, MAX):
                assert decide(SendError(failure, retry_after=1), target, attempt).verdict in Verdict


def test_what_is_not_a_send_error_is_named_without_its_message() -> None:
    assert as_send_error(ConnectionResetError("the child's words")).failure is Failure.NETWORK
    unknown = as_send_error(KeyError("the child's words"))
    assert unknown.failure is Failure.UNKNOWN and "words" not in unknown.reason
    assert [metrics_label(f) for f in (Failure.RATE_LIMITED, Failure.SERVER, Failure.NETWORK, Failure.REFUSED)] \
        == ["429", "5xx", "network", "other"]
