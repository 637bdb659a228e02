"""The retry policy as a table: every failure, for a child and for a staff chat, early and late."""
from __future__ import annotations

import pytest

from bot.delivery.policy import STAFF_CHAT_RETRY, Decision, Verdict, as_send_error, decide, metrics_label
from bot.transport import Failure, SendError
from storage import Target

MAX = 30
RETRY, GIVE_UP = Verdict.RETRY, Verdict.GIVE_UP
CHILD, STAFF = Target.CHILD, Target.OPERATOR


def no_jitter() -> float:
    return 0.0


@pytest.mark.parametrize(("failure", "target", "attempt", "expected"), [
    # The platform asked to wait: exactly that long, whatever the attempt.
    (Failure.RATE_LIMITED, CHILD, 1, Decision(RETRY, 7.0)),
    (Failure.RATE_LIMITED, STAFF, MAX + 5, Decision(RETRY, 7.0)),
    # A child out of reach, or a message their chat refuses: given up at once.
    (Failure.RECIPIENT_GONE, CHILD, 1, Decision(GIVE_UP)),
    (Failure.REFUSED, CHILD, 1, Decision(GIVE_UP)),
    (Failure.NO_ACCESS, CHILD, 1, Decision(GIVE_UP)),
    # A staff chat the bot cannot write to: waited out, admins told; a card is never dropped for it.
    (Failure.NO_ACCESS, STAFF, 1, Decision(RETRY, STAFF_CHAT_RETRY, tell_admins=True)),
    (Failure.REFUSED, STAFF, MAX, Decision(RETRY, STAFF_CHAT_RETRY, tell_admins=True)),
    (Failure.TOPIC_GONE, Target.POLICE, 3, Decision(RETRY, STAFF_CHAT_RETRY, tell_admins=True)),
    # Trouble of the platform or the network: exponential back-off, then given up.
    (Failure.SERVER, CHILD, 1, Decision(RETRY, 2.0)),
    (Failure.NETWORK, STAFF, 3, Decision(RETRY, 8.0)),
    (Failure.CHAT_MOVED, STAFF, 1, Decision(RETRY, 2.0)),
    (Failure.UNKNOWN, CHILD, 12, Decision(RETRY, 300.0)),
    (Failure.SERVER, STAFF, MAX, Decision(GIVE_UP)),
    (Failure.UNKNOWN, CHILD, MAX, Decision(GIVE_UP)),
])
def test_what_happens_after_a_failure(failure: Failure, target: Target, attempt: int, expected: Decision) -> None:
    error = SendError(failure, retry_after=7 if failure is Failure.RATE_LIMITED else None)
    assert decide(error, target, attempt, MAX, no_jitter) == expected


def test_every_failure_has_a_decision_for_every_target() -> None:
    for failure in Failure:
        for target in Target:
            for attempt in (1, MAX):
                assert decide(SendError(failure, retry_after=1), target, attempt, MAX).verdict in Verdict


def test_what_is_not_a_send_error_is_named_without_its_message() -> None:
    assert as_send_error(ConnectionResetError("the child's words")).failure is Failure.NETWORK
    unknown = as_send_error(KeyError("the child's words"))
    assert unknown.failure is Failure.UNKNOWN and "words" not in unknown.reason
    assert [metrics_label(f) for f in (Failure.RATE_LIMITED, Failure.SERVER, Failure.NETWORK, Failure.REFUSED)] \
        == ["429", "5xx", "network", "other"]
