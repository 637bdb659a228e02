"""What staff are told when the delivery gives an item up: nothing is lost without someone knowing.

The delivery worker's `on_failed`: a message that could not reach a child is reported in the case's
topic; a purged case's topic that could not be deleted is reported in the chat's General topic with
a link, so that an admin deletes it by hand and retention really happens.
"""
from __future__ import annotations

from bot.outbox import Outbox
from bot.staff_chats import StaffChats, route_of
from storage import Kind, OutboxItem, Target, Transaction


class Losses:
    def __init__(self, notices: Outbox, chats: StaffChats) -> None:
        """`notices`: an outbox without a hand-over: the round that a failure always triggers takes them."""
        self.notices, self.chats = notices, chats

    async def __call__(self, tx: Transaction, item: OutboxItem, reason: str) -> None:
        if item.target is Target.CHILD and item.case_id is not None:
            # Operators must learn when an answer could not reach the child (e.g. the child blocked the bot).
            case = await tx.cases.get(item.case_id)
            if case is not None:
                await self.notices.notice(tx, case, "operator.notice.undeliverable", reason=reason)
        elif item.kind is Kind.DELETE_TOPIC:
            region = route_of(item.lane)
            await self.notices.general(tx, "operator.topic_not_deleted", target=item.target, reason=reason,
                                       link=self.topic_link(item.target, item.payload["topic_id"], region),
                                       chat_region=region)

    def topic_link(self, target: Target, topic_id: int, region: str | None = None) -> str:
        """t.me/c/<chat>/<topic>: opens the topic for a member of the chat, and no one else."""
        chat = self.chats.of(target, region)
        return f"https://t.me/c/{str(chat).removeprefix('-100')}/{topic_id}" if chat else str(topic_id)
