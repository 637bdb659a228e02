"""Topics created but never attached to their case: found at start and every hour, adopted or deleted.

A case's topic is recorded as an opening before Telegram is asked for it, and its thread id right after
(bot/delivery/topics.py), each in its own transaction; the case takes the topic in a third. A crash
between the last two leaves an opening with a thread id that no case holds. The next try of the
case's card adopts it; this sweep handles what is left after `LEFT_AFTER`: a case still without a
topic takes it (and gets its card), and a topic whose case is gone (purged, erased) or holds another
topic is deleted, so that retention really happens. An opening that never got Telegram's answer (the
network failed after the request) cannot be found again: it is dropped and logged.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from bot.outbox import Outbox
from storage import Database

log = logging.getLogger(__name__)

LEFT_AFTER = timedelta(minutes=10)  # an opening older than this is not in progress any more


async def sweep_openings(db: Database, outbox: Outbox) -> int:
    """Adopt or delete the topics openings left behind; how many openings were settled."""
    settled = 0
    async with db.transaction() as tx:
        for opening in await tx.topic_openings.left_before(tx.now - LEFT_AFTER):
            settled += 1
            await tx.topic_openings.drop(opening.id)
            if opening.thread_id is None:
                log.warning("a topic opening never got Telegram's answer", extra={"chat": str(opening.target)})
                continue
            case = await tx.cases.get(opening.case_id)
            held = case.topic(opening.target).topic_id if case is not None else None
            if case is not None and held is None:
                case = await tx.cases.set_topic(case.id, opening.target, topic_id=opening.thread_id)
                if case.topic(opening.target).card_message_id is None:
                    await outbox.case_card(tx, case, opening.target)  # (a card already queued sends only once)
                log.info("an unrecorded topic was adopted by its case", extra={"case": case.number})
            elif held != opening.thread_id:
                await outbox.delete_topic(tx, opening.target, opening.thread_id)
                log.info("an unrecorded topic of a case gone or elsewhere is deleted", extra={"chat": str(opening.target)})
    if settled:
        outbox.nudge()
    return settled
