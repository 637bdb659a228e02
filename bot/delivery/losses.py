"""What staff (and the child) are told when the delivery gives an item up: nothing is lost without
someone knowing, in words the reader understands.

The delivery worker's `on_failed`:
- a message that could not reach a child is reported in the case's topic, and - if the child's chat
  refused a staff member's message or file (not the child blocking the bot) - the child is told
  something did not come through (never for the bot's own texts: that could loop);
- a message of the child's that could not be shown in a staff chat (a photo Telegram refuses, an
  expired Viber media link) is reported in the case's topic in a counsellor's words ("a photo from
  the child could not be shown"), and the child is asked to send it again or say it in words;
- a purged case's topic that could not be deleted is reported in the chat's General topic with a
  link, so that an admin deletes it by hand and retention really happens.
A loss notice that is itself lost is not reported again (no loop). The worker's `on_chat_back`: one
line in the operator chat's General topic when a staff chat can be written to again after an outage.
"""
from __future__ import annotations

import math

from bot.delivery.health import Outage
from bot.delivery.policy import REFUSALS
from bot.outbox import Outbox
from bot.staff_chats import StaffChats, route_of
from bot.transport import Failure
from dialogs.engine import Engine
from storage import Case, Kind, OutboxItem, Target, Transaction

LOSS_NOTICES = frozenset({"operator.notice.undeliverable", "operator.notice.lost_photo", "operator.notice.lost_file",
                          "operator.notice.lost_voice", "operator.notice.lost_message"})
# The child's files by kind, as a counsellor names them.
LOST_MEDIA = {"photo": "operator.notice.lost_photo", "voice": "operator.notice.lost_voice",
              "audio": "operator.notice.lost_voice"}
CHILD_NOT_SHOWN = "notice.not_shown_to_you"  # something for the child did not come through
CHILD_SEND_AGAIN = "notice.send_again"  # the child's file did not reach the counsellor


class Losses:
    def __init__(self, notices: Outbox, chats: StaffChats, engine: Engine | None = None) -> None:
        """`notices`: an outbox without a hand-over: the round that a failure always triggers takes them.
        `engine`: renders what the child is told (without it, only staff are told)."""
        self.notices, self.chats, self.engine = notices, chats, engine

    async def __call__(self, tx: Transaction, item: OutboxItem, reason: str, failure: Failure = Failure.UNKNOWN) -> None:
        if item.kind is Kind.DELETE_TOPIC:
            region = route_of(item.lane)
            await self.notices.general(tx, "operator.topic_not_deleted", target=item.target, reason=reason,
                                       link=self.topic_link(item.target, item.payload["topic_id"], region),
                                       chat_region=region)
            return
        case = await tx.cases.get(item.case_id) if item.case_id is not None else None
        if item.target is Target.CHILD:
            if case is not None:
                # Operators must learn when an answer could not reach the child (e.g. the child blocked the bot).
                await self.notices.notice(tx, case, "operator.notice.undeliverable", reason=reason)
            if failure in REFUSALS and item.conversation_key and item.kind in (Kind.STAFF_TEXT, Kind.STAFF_COPY):
                await self._tell_child(tx, item.channel, item.conversation_key, CHILD_NOT_SHOWN, case)
            return
        if case is None or item.kind not in (Kind.RELAY, Kind.CASE_FILES, Kind.CARD_PART, Kind.NOTICE):
            return  # a card or its update is rendered again from the case by the next one
        if item.kind is Kind.NOTICE and item.payload.get("key") in LOSS_NOTICES:
            return  # a loss notice that is itself lost: not reported again
        await self.notices.notice(tx, case, lost_key(item), target=item.target)
        childs_file = item.kind is Kind.CASE_FILES or (item.kind is Kind.RELAY and item.payload.get("media"))
        if childs_file and item.target is Target.OPERATOR and case.conversation_key:
            await self._tell_child(tx, case.channel, case.conversation_key, CHILD_SEND_AGAIN, case)

    async def chat_back(self, tx: Transaction, outage: Outage) -> None:
        """A staff chat can be written to again: one line with what waited and for how long (the items
        that failed meanwhile, and those still waiting for the chat: the one just sent among them)."""
        held = max(len(outage.held), await tx.outbox.depth(outage.target) + 1)
        await self.notices.general(tx, "operator.chat_back", target=Target.OPERATOR, role=outage.target.value,
                                   count=held, minutes=max(1, math.ceil(outage.seconds / 60)),
                                   chat_region=outage.region if outage.target is Target.OPERATOR else None)

    async def _tell_child(self, tx: Transaction, channel: str, key: str, text_key: str, case: Case | None) -> None:
        if self.engine is None:
            return
        lang = case.language if case is not None else self.engine.default_language
        await self.notices.say_to_child(tx, channel, key, self.engine.say(lang, text_key))

    def topic_link(self, target: Target, topic_id: int, region: str | None = None) -> str:
        """t.me/c/<chat>/<topic>: opens the topic for a member of the chat, and no one else."""
        chat = self.chats.of(target, region)
        return f"https://t.me/c/{str(chat).removeprefix('-100')}/{topic_id}" if chat else str(topic_id)


def lost_key(item: OutboxItem) -> str:
    """What a counsellor reads when an item for the case's topic was given up."""
    if item.kind is Kind.RELAY:
        media = item.payload.get("media")
        return LOST_MEDIA.get(media.get("kind"), "operator.notice.lost_file") if media else "operator.notice.lost_message"
    if item.kind is Kind.CASE_FILES:
        kinds = {file.get("kind") for file in item.payload.get("files", ())}
        return LOST_MEDIA.get(kinds.pop(), "operator.notice.lost_file") if len(kinds) == 1 else "operator.notice.lost_file"
    return "operator.notice.lost_message"
