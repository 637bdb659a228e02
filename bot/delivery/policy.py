"""What happens after a failed send: a pure function of the failure, its target and the attempt.

Each channel's transport names its failure (bot/transport.py `Failure`); this table alone decides
whether the item is tried again, when, and whether it is given up. Nothing here does I/O, so the
whole policy is tested as a table (tests/test_delivery_policy.py).
"""
from __future__ import annotations

import os
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.transport import Failure, SendError
from storage import Target

MAX_BACKOFF = 300.0
JITTER = 0.1
STAFF_CHAT_RETRY = 60.0  # seconds between tries while a staff chat cannot be written to

# A child's chat that refuses a message will refuse it again: the child blocked the bot, left, or
# the message itself is wrong. Retrying would only delay what follows in their lane.
GIVE_UP_FOR_A_CHILD = frozenset({
    Failure.RECIPIENT_GONE, Failure.REFUSED, Failure.NO_ACCESS, Failure.TOPIC_GONE, Failure.TOPIC_CLOSED,
})
# A staff chat that refuses is a configuration problem (the bot was removed, or lost its rights) to
# wait out while admins are told; a card is never dropped for it.
STAFF_CHAT_TROUBLE = GIVE_UP_FOR_A_CHILD


class Verdict(StrEnum):
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    delay: float = 0.0  # seconds until the next attempt (RETRY)
    tell_admins: bool = False  # a staff chat cannot be written to: admins should hear of it


def backoff_seconds(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Delay after the `attempt`-th failed attempt: min(300, 2**attempt) seconds plus up to 10 %."""
    base = min(MAX_BACKOFF, 2.0 ** min(attempt, 32))
    return base * (1 + JITTER * rng())


def decide(error: SendError, target: Target, attempt: int, max_attempts: int,
           rng: Callable[[], float] = random.random) -> Decision:
    """What to do after the `attempt`-th failed attempt to send an item for `target`."""
    failure = error.failure
    if failure is Failure.RATE_LIMITED:
        return Decision(Verdict.RETRY, max(0.0, float(error.retry_after or 0.0)))  # exactly when asked
    if target is Target.CHILD and failure in GIVE_UP_FOR_A_CHILD:
        return Decision(Verdict.GIVE_UP)
    if target is not Target.CHILD and failure in STAFF_CHAT_TROUBLE:
        return Decision(Verdict.RETRY, STAFF_CHAT_RETRY, tell_admins=True)
    if attempt >= max_attempts:
        return Decision(Verdict.GIVE_UP)
    return Decision(Verdict.RETRY, backoff_seconds(attempt, rng))


def metrics_label(failure: Failure) -> str:
    """The label a retry is counted under: "429", "5xx", "network" or "other"."""
    return {Failure.RATE_LIMITED: "429", Failure.SERVER: "5xx", Failure.NETWORK: "network"}.get(failure, "other")


def as_send_error(error: BaseException) -> SendError:
    """A transport's SendError as it is; anything else (a bug, an unmapped library error) is UNKNOWN,
    described by its type and place only: an exception's message may quote what was being sent."""
    if isinstance(error, SendError):
        return error
    if isinstance(error, OSError):  # (TimeoutError and ConnectionError are OSErrors)
        return SendError(Failure.NETWORK, _type_and_place(error))
    return SendError(Failure.UNKNOWN, _type_and_place(error))


def _type_and_place(error: BaseException) -> str:
    place = None
    for frame, line in traceback.walk_tb(error.__traceback__):
        place = f"{os.path.basename(frame.f_code.co_filename)}:{line}"
    return type(error).__name__ + (f" at {place}" if place else "")
