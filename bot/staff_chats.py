"""The configured staff chats, and which target a chat is."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from storage import Target

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StaffChats:
    """Mutable because Telegram can move a group to a new id (`migrate_to_chat_id`): it is followed,
    and admins are told to change the setting."""

    operator: int
    police: int | None = None

    def of(self, target: Target) -> int | None:
        """The chat of a staff target (None: police take no part in this deployment)."""
        return self.operator if target is Target.OPERATOR else self.police if target is Target.POLICE else None

    def target_of(self, chat_id: int) -> Target | None:
        """Which staff chat `chat_id` is, or None for any other chat."""
        if chat_id == self.operator:
            return Target.OPERATOR
        if self.police is not None and chat_id == self.police:
            return Target.POLICE
        return None

    @property
    def police_enabled(self) -> bool:
        return self.police is not None

    def move(self, old_chat_id: int, new_chat_id: int) -> None:
        """Follow a group that Telegram moved to a new id."""
        target = self.target_of(old_chat_id)
        if target is None:
            return
        log.error("the %s chat moved to a new id: set %s_CHAT_ID=%s", target, target.upper(), new_chat_id)
        if target is Target.OPERATOR:
            self.operator = new_chat_id
        else:
            self.police = new_chat_id
