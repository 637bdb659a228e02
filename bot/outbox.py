"""What may be queued for sending, and in which lane: the contract between services and senders.

Every item is written inside the caller's transaction, so that a message leaves if and only if the
change that causes it commits. A lane is sent one item at a time in order: one lane per child, one
per case topic in each staff chat (and beside it one for the case's urgent items and one for its
card's edits: `staff_lane`). Cards are rendered when they are sent, from the case as it is
then, so a queued card never shows a stale status. Item kinds and their payloads: storage.Kind.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Protocol

from bot.staff_chats import StaffChats, staff_lane
from bot.transport import Rows
from storage import Case, CaseStatus, ChannelName, Consent, Kind, OutboxItem, Priority, Target, Transaction


def child_lane(conversation_key: str) -> str:
    return f"child:{conversation_key}"


class Delivery(Protocol):
    """What the outbox needs of this process's delivery worker (bot/delivery/worker.py)."""

    def lease_for(self, channel: str) -> tuple[str, float] | None: ...

    def hand_over(self, item: OutboxItem) -> None: ...

    def nudge(self) -> None: ...


class Outbox:
    """Queues items in the caller's transaction. Once it commits, each item goes straight to this
    process's delivery worker, queued leased to it; any other item nudges the worker's rounds. Neither
    happens before the commit, nor at all if it rolls back."""

    def __init__(self, delivery: Delivery | None = None, staff_channel: ChannelName = ChannelName.TELEGRAM,
                 chats: StaffChats | None = None) -> None:
        """`chats`: the staff chats, whose regions' own chats get their cases (none: the default chats)."""
        self.delivery = delivery
        self.staff_channel = staff_channel
        self.chats = chats

    def route(self, target: Target, region: str | None) -> str | None:
        """The region whose own chat gets these items (None: the default chat); the lane names it."""
        return self.chats.route(target, region) if self.chats is not None else None

    def nudge(self) -> None:
        """Let the worker's rounds look for work now (e.g. after a sweep queued or released items)."""
        if self.delivery is not None:
            self.delivery.nudge()

    async def say_to_child(self, tx: Transaction, channel: str, key: str, text: str, buttons: Rows = (),
                           address: dict | None = None, priority: Priority = Priority.NORMAL,
                           forgotten: bool = False) -> None:
        """`address`: the child's, if the caller has it at hand (the message can then go at once)."""
        payload: dict[str, Any] = {"text": text, "buttons": [[[b.label, b.payload] for b in row] for row in buttons]}
        if forgotten:
            # The child erased their data: this last message carries its own address and is linked
            # to nothing, so no record of it is kept against the child.
            payload["address"] = address
        await self.to_child(tx, channel, key, Kind.SAY, payload, priority, linked=not forgotten, address=address)

    async def to_child(self, tx: Transaction, channel: str, key: str, kind: Kind, payload: dict,
                       priority: Priority = Priority.NORMAL, case_id: int | None = None, linked: bool = True,
                       address: dict | None = None) -> None:
        await self._queue(tx, Target.CHILD, channel, child_lane(key), kind, payload, priority,
                          conversation_key=key if linked else None, case_id=case_id, address=address)

    async def to_staff(self, tx: Transaction, target: Target, case: Case, kind: Kind, payload: dict,
                       priority: Priority | None = None) -> None:
        if kind is Kind.CARD_UPDATE:
            priority = Priority.LOW  # after every message: the card shows the case as it is when it is edited
        elif priority is None:
            priority = Priority.URGENT if case.urgent else Priority.NORMAL
        lane = staff_lane(target, case.id, self.route(target, case.region), kind=kind, priority=priority)
        await self._queue(tx, target, self.staff_channel, lane, kind, {"case_id": case.id, **payload}, priority,
                          case_id=case.id)

    async def _queue(self, tx: Transaction, target: Target, channel: str, lane: str, kind: Kind, payload: dict,
                     priority: Priority, **fields: Any) -> None:
        # A child's message goes straight to the worker only with the child's address at hand; without
        # it, a round reads the address with the item.
        handed = target is not Target.CHILD or fields.get("address") is not None
        lease = self.delivery.lease_for(channel) if handed and self.delivery is not None else None
        item = None
        if lease is not None:
            item = await tx.outbox.add_leased(*lease, target, channel, lane, kind, payload, priority, **fields)
        else:
            fields.pop("address", None)
            await tx.outbox.add(target, channel, lane, kind, payload, priority=priority, **fields)
        if item is not None and self.delivery is not None:
            tx.on_commit(partial(self.delivery.hand_over, item))
        else:  # not leased: a round claims it in its turn
            tx.on_commit(self.nudge)

    async def case_card(self, tx: Transaction, case: Case, target: Target = Target.OPERATOR) -> None:
        await self.to_staff(tx, target, case, Kind.CASE_CARD, {})

    async def case_changed(self, tx: Transaction, case: Case, notice: str | None = None, **slots: Any) -> None:
        """Edit the card in every staff chat that has it, and post a notice in the topic."""
        police = case.police_topic_id is not None or case.status is CaseStatus.ESCALATED
        for target in (Target.OPERATOR, Target.POLICE) if police else (Target.OPERATOR,):
            await self.to_staff(tx, target, case, Kind.CARD_UPDATE, {})
            if notice:
                await self.to_staff(tx, target, case, Kind.NOTICE, {"key": notice, "slots": slots})

    async def notice(self, tx: Transaction, case: Case, key: str, target: Target = Target.OPERATOR,
                     **slots: Any) -> None:
        await self.to_staff(tx, target, case, Kind.NOTICE, {"key": key, "slots": slots})

    async def general(self, tx: Transaction, key: str, target: Target = Target.OPERATOR, chat_region: str | None = None,
                      **slots: Any) -> None:
        """A line in a staff chat's General topic (`chat_region`'s own chat, or the default one), not in one
        case's topic; it goes before case items."""
        lane = staff_lane(target, "general", self.route(target, chat_region))
        await self._queue(tx, target, self.staff_channel, lane, Kind.GENERAL,
                          {"key": key, "slots": slots}, Priority.URGENT)

    async def general_photo(self, tx: Transaction, caption: str, photo: str | None = None,
                            target: Target = Target.OPERATOR) -> None:
        """A picture (base64 PNG) with its caption in a staff chat's General topic (the Monday figures)."""
        payload = {"caption": caption} if photo is None else {"caption": caption, "photo": photo}
        await self._queue(tx, target, self.staff_channel, f"{target}:general", Kind.GENERAL_PHOTO, payload,
                          Priority.NORMAL)

    async def delete_topic(self, tx: Transaction, target: Target, topic_id: int, region: str | None = None) -> None:
        """Delete a purged case's topic (Telegram would keep it for ever otherwise), in the case's chat."""
        await self._queue(tx, target, self.staff_channel, staff_lane(target, "general", self.route(target, region)),
                          Kind.DELETE_TOPIC,
                          {"topic_id": topic_id}, Priority.URGENT)

    async def relay_from_child(self, tx: Transaction, case: Case, text: str, media: dict | None, edited: bool,
                               child_message_id: int | None) -> None:
        payload = {"text": text, "media": media, "edited": edited, "child_message_id": child_message_id}
        await self.to_staff(tx, Target.OPERATOR, case, Kind.RELAY, payload)
        if case.status is CaseStatus.ESCALATED and case.consent == Consent.POLICE:
            await self.to_staff(tx, Target.POLICE, case, Kind.RELAY, payload)
