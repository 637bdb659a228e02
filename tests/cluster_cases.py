"""Whole cases played against a bot seen only through the fake Bot API, and what each side received,
counted: every card, relayed message and reply, with the ones lost and the ones seen twice.

One case: a child reports (every step of the report), the case card appears in its topic, the admin
(a counsellor here) takes the case and answers in the topic, the answer reaches the child, and the
child writes back, which is relayed into the topic. Texts carry a tag unique to the case, so each
message is counted where it arrived.
"""
from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field

from dialogs.engine import Engine
from tests.fakes.telegram_api import FakeTelegram, StoredMessage
from tests.resilience_support import Phone, cards_in
from tests.support import ADMIN, OPERATOR

WAIT = 120.0  # generous: under kills and a storm of refusals a message may wait for several retries


@dataclass
class Played:
    child: int
    tag: str
    number: str = ""
    topic: int | None = None
    done: bool = False
    error: str = ""


@dataclass
class Tally:
    """What arrived: per kind, how many were expected, lost, and seen more than once."""

    expected: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    duplicated: Counter[str] = field(default_factory=Counter)  # extra copies

    def line(self) -> str:
        kinds = sorted(self.expected)
        parts = [f"{kind}: {self.expected[kind]} expected, {self.lost[kind]} lost, {self.duplicated[kind]} twice"
                 for kind in kinds]
        return "; ".join(parts)

    @property
    def total_lost(self) -> int:
        return sum(self.lost.values())

    @property
    def total_duplicated(self) -> int:
        return sum(self.duplicated.values())


def _texts(messages: list[StoredMessage]) -> list[str]:
    return [m.text or m.caption or "" for m in messages]


async def play_case(tg: FakeTelegram, engine: Engine, child_id: int, tag: str, wait: float = WAIT) -> Played:
    """One whole case; the result says how far it got (an exception text if it did not finish).
    `wait`: the longest wait for any one answer."""
    played = Played(child_id, tag)
    phone = Phone(tg, engine, child_id)
    try:
        phone.send("/start")
        for key in ("menu.report", "category.bullying"):
            await phone.press(key, wait)
        await phone.expect_key("report.what", wait)
        phone.send(f"Someone keeps writing mean things to me, case {tag}")
        for key in ("platform.instagram", "when.week", "answer.yes", "who.known", "who.peer", "age.middle",
                    "screenshots.done", "summary.correct", "consent.counsellor", "reply.yes"):
            await phone.press(key, wait)
        confirmation = await phone.expect(engine.say("en", "report.sent").split("{")[0], wait)
        played.number = await tg.wait_for(lambda t: _number(t, confirmation), wait, f"the topic of {tag}")
        played.topic = next(t.thread_id for t in tg.topics(OPERATOR) if t.name.startswith(played.number))
        card = await tg.wait_for(lambda t: (cards_in(t, OPERATOR, engine, played.number) or [None])[0], wait,
                                 f"the card of {tag}")
        tg.user_presses_button(ADMIN, card, text=engine.say("en", "operator.button.take"))
        await phone.expect(engine.say("en", "notice.taken", case_number=played.number), wait)
        tg.user_sends_text(ADMIN, f"We are here for you ({tag} reply)", chat_id=OPERATOR, thread_id=played.topic)
        await phone.expect(f"({tag} reply)", wait)
        phone.send(f"Thank you, one more thing ({tag} follow-up)")
        await tg.wait_for(lambda t: any(f"({tag} follow-up)" in x for x in _texts(t.messages_in(OPERATOR, played.topic))),
                          wait, f"the follow-up of {tag}")
        played.done = True
    except Exception as error:  # noqa: BLE001 - reported with the counts: a case that did not finish is a loss
        played.error = f"{type(error).__name__}: {str(error)[:300]}"
    return played


def _number(tg: FakeTelegram, confirmation: StoredMessage) -> str | None:
    """The case number of the topic the confirmation names (the topic may open a moment after)."""
    text = confirmation.text or ""
    return next((n for topic in tg.topics(OPERATOR) if (n := topic.name.split(" · ")[0]) in text), None)


def tally(tg: FakeTelegram, engine: Engine, cases: list[Played]) -> Tally:
    """Count, for every case played, its card, the counsellor's reply at the child, the child's
    follow-up in the topic, and every other message either side got more than once."""
    result = Tally()
    for case in cases:
        child = Counter(_texts(tg.sent_to(case.child)))
        topic = Counter(_texts(tg.sent_to(OPERATOR, case.topic))) if case.topic is not None else Counter()
        cards = len(cards_in(tg, OPERATOR, engine, case.number)) if case.number else 0
        seen = {
            "card": cards,
            "reply": sum(n for text, n in child.items() if f"({case.tag} reply)" in text),
            "relay": sum(n for text, n in topic.items() if f"({case.tag} follow-up)" in text),
        }
        for kind, n in seen.items():
            result.expected[kind] += 1
            result.lost[kind] += n == 0
            result.duplicated[kind] += max(0, n - 1)
        # Everything else the child read and the topic showed: each text once (a card is edited, not resent).
        counted = {text for text in child if f"({case.tag} reply)" in text} | {
            text for text in topic if f"({case.tag} follow-up)" in text}
        for counter, kind in ((child, "other to child"), (topic, "other in topic")):
            result.expected[kind] += sum(1 for text in counter if text not in counted)
            result.duplicated[kind] += sum(n - 1 for text, n in counter.items() if n > 1 and text not in counted)
    return result


async def keep_playing(tg: FakeTelegram, engine: Engine, players: int, until: asyncio.Event,
                       first_child: int = 7100, wait: float = WAIT) -> list[Played]:
    """`players` children at once, each playing case after case (a new child each time) until `until`."""
    ids = itertools.count(first_child)

    async def player() -> list[Played]:
        played = []
        while not until.is_set():
            child = next(ids)
            played.append(await play_case(tg, engine, child, f"c{child}", wait))
        return played

    return [case for cases in await asyncio.gather(*(player() for _ in range(players))) for case in cases]
