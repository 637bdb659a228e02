"""The configured staff chats (the default ones and regions' own), which target and region a chat
is, and which chat a case's items go to.

A staff item's lane names its chat: `operator:<case>` for the default operator chat,
`operator@kyiv:<case>` for Kyiv's own; the delivery sends to that chat and paces it with that chat's
allowance (bot/limits.py keys staff buckets by the lane's head). A case of a region without a chat
of its own (or of no region) goes to the default chat, as it did before regions existed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from storage import Case, Kind, Priority, Target, Transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChatPlace:
    """One configured chat: its target, its region (None: the default chat) and the setting naming it."""

    target: Target
    region: str | None
    chat_id: int

    @property
    def setting(self) -> str:
        name = "OPERATOR" if self.target is Target.OPERATOR else "POLICE"
        return f"{name}_CHAT_ID" if self.region is None else f"{name}_CHATS: {self.region}"


@dataclass(slots=True)
class StaffChats:
    """Mutable because Telegram can move a group to a new id (`migrate_to_chat_id`): it is followed,
    and admins are told to change the setting."""

    operator: int
    police: int | None = None
    operator_regions: dict[str, int] = field(default_factory=dict)
    police_regions: dict[str, int] = field(default_factory=dict)

    def _regions(self, target: Target) -> dict[str, int]:
        return self.operator_regions if target is Target.OPERATOR else self.police_regions

    def route(self, target: Target, region: str | None) -> str | None:
        """The region whose own chat gets `target`'s items of a case in `region` (None: the default chat)."""
        return region if region is not None and region in self._regions(target) else None

    def of(self, target: Target, region: str | None = None) -> int | None:
        """The chat of a staff target for a case in `region` (None: police take no part in this deployment)."""
        route = self.route(target, region)
        if route is not None:
            return self._regions(target)[route]
        return self.operator if target is Target.OPERATOR else self.police if target is Target.POLICE else None

    def place_of(self, chat_id: int) -> ChatPlace | None:
        """Which configured chat `chat_id` is, or None for any other chat."""
        return next((place for place in self.places() if place.chat_id == chat_id), None)

    def target_of(self, chat_id: int) -> Target | None:
        """Which staff chat `chat_id` is, or None for any other chat."""
        place = self.place_of(chat_id)
        return place.target if place is not None else None

    def places(self) -> list[ChatPlace]:
        """Every configured chat, the default ones first."""
        found = [ChatPlace(Target.OPERATOR, None, self.operator)]
        if self.police is not None:
            found.append(ChatPlace(Target.POLICE, None, self.police))
        for target in (Target.OPERATOR, Target.POLICE):
            found += [ChatPlace(target, region, chat) for region, chat in self._regions(target).items()]
        return found

    @property
    def regions_with_chats(self) -> frozenset[str]:
        """Regions with a chat of their own: the child is asked where they live only if there is one."""
        return frozenset(self.operator_regions) | frozenset(self.police_regions)

    @property
    def police_enabled(self) -> bool:
        return self.police is not None

    def move(self, old_chat_id: int, new_chat_id: int) -> None:
        """Follow a group that Telegram moved to a new id."""
        place = self.place_of(old_chat_id)
        if place is None:
            return
        log.error("a staff chat moved to a new id: set %s to %s", place.setting, new_chat_id)
        if place.region is not None:
            self._regions(place.target)[place.region] = new_chat_id
        elif place.target is Target.OPERATOR:
            self.operator = new_chat_id
        else:
            self.police = new_chat_id


def staff_lane(target: Target, what: int | str, route: str | None = None, *, kind: Kind | None = None,
               priority: Priority = Priority.NORMAL) -> str:
    """The lane of a case's items (`what`: its id) or of a chat's General topic (`what`: "general").
    A case's card edits go in a lane of their own (a slow or retried edit never holds the child's words
    back), and so do its urgent items (never held behind the case's ordinary ones, e.g. a file Telegram
    refuses)."""
    lane = f"{target}:{what}" if route is None else f"{target}@{route}:{what}"
    if kind is Kind.CARD_UPDATE:
        return f"{lane}:card"
    return f"{lane}:urgent" if priority is Priority.URGENT else lane


def route_of(lane: str) -> str | None:
    """The region whose own chat a staff lane goes to (None: the default chat)."""
    return lane.split(":", 1)[0].partition("@")[2] or None


async def topic_case(tx: Transaction, place: ChatPlace, chats: StaffChats, topic_id: int) -> Case | None:
    """The case whose topic `topic_id` is in the chat `place`: every forum numbers its topics on its own,
    so a case counts only when its items are routed to this very chat."""
    for case in await tx.cases.with_topic(place.target, topic_id):
        if chats.route(place.target, case.region) == place.region:
            return case
    return None
