"""What may be queued for sending, and in which lane: the contract between services and senders.

Every item is written inside the caller's transaction (DESIGN rule 3). A lane is sent one item at a
time in order: one lane per child, one per case topic in each staff chat. Cards are rendered when
they are sent, from the case as it is then, so a queued card never shows a stale status.
"""
from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from dialogs.model import Button

URGENT, NORMAL = 0, 1


class Kind:
    # to a child
    SAY = "say"  # {text, buttons, address?}
    DELETE_MESSAGES = "delete_messages"  # {message_ids}
    STAFF_TEXT = "staff_text"  # {case_id, role, text}
    STAFF_COPY = "staff_copy"  # {case_id, role, chat, message_id, caption}
    # to the operator or police chat
    CASE_CARD = "case_card"  # {case_id}: opens the topic if needed and sends the card
    CARD_PART = "card_part"  # {case_id, text}: the rest of a card too long for one message
    CASE_FILES = "case_files"  # {case_id, files}: the child's screenshots (an album) or a voice note
    CARD_UPDATE = "card_update"  # {case_id}: edits the card in place
    RELAY = "relay"  # {case_id, text, media, edited, child_message_id}
    NOTICE = "notice"  # {case_id, key, slots}
    GENERAL = "general"  # {key, slots}: a line in the chat's General topic (digest, SLA alarm)
    DELETE_TOPIC = "delete_topic"  # {topic_id}


def child_lane(conversation_key: str) -> str:
    return f"child:{conversation_key}"


def staff_lane(target: str, case_id: int) -> str:
    return f"{target}:{case_id}"


class Outbox:
    """Queues items in the caller's transaction. Once it commits, each item goes straight to this
    process's delivery worker (`worker`, set by the app), queued leased to it; any other item wakes the
    worker's rounds (`wake`). Neither happens before the commit, nor at all if it rolls back."""

    def __init__(self, staff_channel: str = "telegram") -> None:
        self.staff_channel = staff_channel
        self.wake = asyncio.Event()
        self.worker: Any = None  # bot.delivery.DeliveryWorker

    async def say_to_child(self, tx: Any, channel: str, key: str, text: str,
                           buttons: tuple[tuple[Button, ...], ...] = (), address: dict | None = None,
                           priority: int = NORMAL, forgotten: bool = False) -> None:
        """`address`: the child's, if the caller has it at hand (the message can then go at once)."""
        payload: dict[str, Any] = {"text": text, "buttons": [[[b.label, b.payload] for b in row] for row in buttons]}
        if forgotten:
            # The child erased their data: this last message carries its own address and is linked
            # to nothing, so no record of it is kept against the child.
            payload["address"] = address
        await self.to_child(tx, channel, key, Kind.SAY, payload, priority, linked=not forgotten, address=address)

    async def to_child(self, tx: Any, channel: str, key: str, kind: str, payload: dict, priority: int = NORMAL,
                       case_id: int | None = None, linked: bool = True, address: dict | None = None) -> None:
        await self._queue(tx, "child", channel, child_lane(key), kind, payload, priority,
                          conversation_key=key if linked else None, case_id=case_id, address=address)

    async def to_staff(self, tx: Any, target: str, case: Any, kind: str, payload: dict,
                       priority: int | None = None) -> None:
        if priority is None:
            priority = URGENT if case.urgent else NORMAL
        await self._queue(tx, target, self.staff_channel, staff_lane(target, case.id), kind,
                          {"case_id": case.id, **payload}, priority, case_id=case.id)

    async def _queue(self, tx: Any, target: str, channel: str, lane: str, kind: str, payload: dict, priority: int,
                     **fields: Any) -> None:
        # A child's message goes straight to the worker only with the child's address at hand; without
        # it, a round reads the address with the item.
        handed = target != "child" or fields.get("address") is not None
        lease = self.worker.lease_for(channel) if handed and self.worker is not None else None
        item = None
        if lease is not None:
            item = await tx.outbox.add_leased(*lease, target, channel, lane, kind, payload, priority, **fields)
        else:
            fields.pop("address", None)
            await tx.outbox.add(target, channel, lane, kind, payload, priority=priority, **fields)
        if item is not None:
            tx.on_commit(partial(self.worker.hand_over, item))
        else:  # not leased: a round claims it in its turn
            tx.on_commit(self.wake.set)

    async def case_card(self, tx: Any, case: Any, target: str = "operator") -> None:
        await self.to_staff(tx, target, case, Kind.CASE_CARD, {})

    async def case_changed(self, tx: Any, case: Any, notice: str | None = None, **slots: Any) -> None:
        """Edit the card in every staff chat that has it, and post a notice in the topic."""
        targets = ["operator"] + (["police"] if case.police_topic_id or case.status == "escalated" else [])
        for target in targets:
            await self.to_staff(tx, target, case, Kind.CARD_UPDATE, {})
            if notice:
                await self.to_staff(tx, target, case, Kind.NOTICE, {"key": notice, "slots": slots})

    async def notice(self, tx: Any, case: Any, key: str, target: str = "operator", **slots: Any) -> None:
        await self.to_staff(tx, target, case, Kind.NOTICE, {"key": key, "slots": slots})

    async def general(self, tx: Any, key: str | None, target: str = "operator", kind: str = Kind.GENERAL,
                      **values: Any) -> None:
        """An item for a staff chat as a whole, not for one case's topic; it goes before case items."""
        payload = {"key": key, "slots": values} if kind == Kind.GENERAL else values
        await self._queue(tx, target, self.staff_channel, f"{target}:general", kind, payload, URGENT)

    async def relay_from_child(self, tx: Any, case: Any, text: str, media: dict | None, edited: bool,
                               child_message_id: int | None) -> None:
        payload = {"text": text, "media": media, "edited": edited, "child_message_id": child_message_id}
        await self.to_staff(tx, "operator", case, Kind.RELAY, payload)
        if case.status == "escalated" and case.consent == "police":
            await self.to_staff(tx, "police", case, Kind.RELAY, payload)
