"""The surge model of `python -m bench.surge` on its simulated clock (deterministic, no real waits):
each region's chat has its own allowance, and an urgent card overtakes every waiting ordinary one."""
from __future__ import annotations

import asyncio

from bench.surge import SimulatedLoop, run
from bot.limits import Limits
from bot.staff_chats import staff_lane
from storage import Target


def simulate(**kwargs: object) -> dict:
    loop = SimulatedLoop()
    try:
        return loop.run_until_complete(run(**kwargs))  # type: ignore[arg-type]
    finally:
        loop.close()


def test_an_urgent_card_overtakes_a_backlog_of_waiting_cards():
    behind = simulate(children=0, chats=1, urgent_share=0, backlog=200, urgent_at=60.0)["urgent_behind_backlog"]
    assert behind <= 10.0  # simulated seconds: two Bot API calls within the group's 20 a minute


def test_three_regional_chats_wait_a_third_as_long_as_one():
    one = simulate(children=60, chats=1, urgent_share=0)["ordinary"]["p50"]
    three = simulate(children=60, chats=3, urgent_share=0)["ordinary"]["p50"]
    assert three <= one / 3


class _Item:
    def __init__(self, lane: str) -> None:
        self.channel, self.target, self.lane = "telegram", Target.OPERATOR, lane


def test_each_staff_chat_has_its_own_allowance():
    async def check() -> None:
        limits = Limits(30, 1, 2)
        kyiv, default = _Item(staff_lane(Target.OPERATOR, 1, "kyiv")), _Item(staff_lane(Target.OPERATOR, 2))
        for _ in range(2):
            await limits.acquire(kyiv)
        assert not limits.has_capacity(kyiv) and limits.has_capacity(default)
        assert limits.for_item(kyiv)[1] is limits.for_item(_Item(staff_lane(Target.OPERATOR, 9, "kyiv")))[1]
    asyncio.run(check())
