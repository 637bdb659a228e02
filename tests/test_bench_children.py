"""The bench's simulated children: a child is never queued twice (it would act past its script)."""
from __future__ import annotations

import asyncio
import re

from bench.children import Children
from bench.script import Action
from tests.fakes.telegram_api import StoredMessage

ANSWER = re.compile("ok")


class QuietTelegram:
    """Just enough of the bench's fake Telegram for children that type text."""

    def __init__(self) -> None:
        self.pushed_at: dict[int, float] = {}

    def add_user(self, user_id: int, **_: object) -> None:
        pass

    def user_sends_text(self, user_id: int, text: str) -> None:
        self.pushed_at[user_id] = 0.0


def _answer(children: Children, user_id: int) -> None:
    message = StoredMessage(chat_id=user_id, message_id=1, data={"text": "ok"}, thread_id=None, from_bot=True)
    children._on_message(user_id, message, arrived=0.0)


async def test_a_child_released_while_its_answer_settles_is_queued_once() -> None:
    """A child's answer completes (its readying is due, not yet run) and the bench releases
    everyone at that moment, as it does when the spread ends: the child is ready once, not twice
    (twice, it acted past the end of its script)."""
    script = [Action("text", "/start", 1, (ANSWER,)), Action("text", "hi", 1, (ANSWER,))]
    children = Children(QuietTelegram(), script, first_user_id=1)  # type: ignore[arg-type]
    # Child i walks to step i % 2: the second takes one step; no time to wait for its answer.
    assert await children.spread(2, timeout=0, positions=2) == 1
    _answer(children, 2)
    children.release()
    await asyncio.sleep(0)
    assert sorted(child.user_id for child in children.ready) == [1, 2]
