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

MAX_BACKOFF = 300.0  # the longest wait between two tries (an outage is retried this often at least)
JITTER = 0.1
STAFF_CHAT_RETRY = 60.0  # the longest wait between tries while a staff chat cannot be written to
REFUSED_TRIES = 3  # a message the platform refuses (a wrong file, a bad request) is given up after this many tries
UNKNOWN_TRIES = 6  # a failure nobody named (a bug): given up after this many tries (about a minute)
KEEP_SECONDS = 90 * 86400.0  # RETENTION_DAYS' default: how long an item is kept through an outage

# Refusals of this very message: it will be refused again, so a few tries, then the lane moves on
# (the loss is told, bot/delivery/losses.py). For every target: one bad item never holds a lane.
REFUSALS = frozenset({Failure.REFUSED, Failure.TOPIC_GONE, Failure.TOPIC_CLOSED})
# A child's chat that refuses everything: the child blocked the bot or left. Given up at once.
CHILD_GONE = frozenset({Failure.RECIPIENT_GONE, Failure.NO_ACCESS})
# A staff chat that refuses everything (the bot was removed, or lost its rights) is an outage of that
# chat, not of one message: every item waits it out while admins are told; nothing is dropped.
STAFF_CHAT_TROUBLE = frozenset({Failure.NO_ACCESS, Failure.RECIPIENT_GONE})
# Trouble of the platform or the network: nothing is wrong with the item; it is kept and retried.
OUTAGES = frozenset({Failure.SERVER, Failure.NETWORK, Failure.NO_ACCESS, Failure.RECIPIENT_GONE})


class Verdict(StrEnum):
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    delay: float = 0.0  # seconds until the next attempt (RETRY)
    tell_admins: bool = False  # a staff chat cannot be written to: admins should hear of it


def backoff_seconds(attempt: int, rng: Callable[[], float] = random.random, cap: float = MAX_BACKOFF) -> float:
    """Delay after the `attempt`-th failed attempt: min(cap, 2**attempt) seconds plus up to 10 %."""
    base = min(cap, 2.0 ** min(attempt, 32))
    return base * (1 + JITTER * rng())


def decide(error: SendError, target: Target, attempt: int, age: float = 0.0, keep: float = KEEP_SECONDS,
           rng: Callable[[], float] = random.random, others_get_through: bool = False) -> Decision:
    """What to do after the `attempt`-th failed attempt to send an item for `target`, queued `age`
    seconds ago; an outage is waited out for `keep` seconds (RETENTION_DAYS). `others_get_through`:
    other items for the same kind of chat were sent in the last minute, so a 5xx or network failure
    that keeps coming back for this item is its own trouble, not an outage."""
    failure = error.failure
    if failure in (Failure.SERVER, Failure.NETWORK) and others_get_through and attempt >= UNKNOWN_TRIES:
        return Decision(Verdict.GIVE_UP)  # (no item waits more than two minutes behind this one)
    if failure is Failure.RATE_LIMITED:
        return Decision(Verdict.RETRY, max(0.0, float(error.retry_after or 0.0)))  # exactly when asked
    if target is Target.CHILD and failure in CHILD_GONE:
        return Decision(Verdict.GIVE_UP)
    if failure in REFUSALS:
        return Decision(Verdict.GIVE_UP) if attempt >= REFUSED_TRIES else Decision(Verdict.RETRY, backoff_seconds(attempt, rng))
    if age >= keep or (failure not in OUTAGES and attempt >= UNKNOWN_TRIES):
        return Decision(Verdict.GIVE_UP)
    if target is not Target.CHILD and failure in STAFF_CHAT_TROUBLE:
        return Decision(Verdict.RETRY, backoff_seconds(attempt, rng, STAFF_CHAT_RETRY), tell_admins=True)
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
