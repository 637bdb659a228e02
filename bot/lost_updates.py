"""A stored update that is finally given up (parked) is never lost in silence.

The inbox parks an update after INBOX_MAX_ATTEMPTS failed handlings (bot/inbox.py). When it was a
child's, the child gets a kind line that something they sent could not be processed and may be sent
again, and, if the child has an open case, staff see a line in its topic. Nothing of the update's
content is repeated (it may be what failed); logs carry only the item id.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.conversation import Child
from bot.outbox import Outbox
from dialogs.engine import Engine
from dialogs.model import State
from storage import InboxItem, Transaction

log = logging.getLogger(__name__)

ChildOf = Callable[[dict[str, Any]], Child | None]  # a channel's reading of who sent an update
CHILD_TEXT = "notice.update_lost"
STAFF_TEXT = "operator.notice.update_lost"


class LostUpdates:
    def __init__(self, engine: Engine, pseudonym: Callable[[str, Any], str], outbox: Outbox,
                 children: Mapping[str, ChildOf]) -> None:
        self.engine, self.pseudonym, self.outbox, self.children = engine, pseudonym, outbox, children

    async def parked(self, tx: Transaction, item: InboxItem) -> None:
        """`item` was parked: tell its child and the child's case topic (InboxProcessor's `on_parked`)."""
        child_of = self.children.get(item.channel)
        child = child_of(item.payload) if child_of is not None and item.payload is not None else None
        if child is None:
            return  # not a child's update (a staff chat's, a stray group's): the log line and metric say it
        key = self.pseudonym(child.channel, child.platform_id)
        conversation = await tx.conversations.get(key)
        lang = State.from_dict(conversation.state).lang if conversation else self.engine.default_language
        await self.outbox.say_to_child(tx, child.channel, key, self.engine.say(lang, CHILD_TEXT), address=child.address)
        case = await tx.cases.open_for(key)
        if case is not None:
            await self.outbox.notice(tx, case, STAFF_TEXT)
        log.info("parked update told", extra={"item": item.id, "case": case.id if case else None})
