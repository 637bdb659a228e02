"""One repository class per table (audit lives with staff, both message tables together)."""
from __future__ import annotations

from storage.repositories.cases import Cases
from storage.repositories.conversations import Conversations
from storage.repositories.heartbeats import Heartbeats
from storage.repositories.inbox import Inbox
from storage.repositories.messages import CaseMessages, ChatMessages
from storage.repositories.openings import TopicOpenings
from storage.repositories.outbox import Outbox
from storage.repositories.receipts import CaseChats, ReceiptFailures
from storage.repositories.staff import Audit, Staff
from storage.repositories.stats import Stats

__all__ = ["Audit", "CaseChats", "CaseMessages", "Cases", "ChatMessages", "Conversations", "Heartbeats", "Inbox",
           "Outbox", "ReceiptFailures", "Staff", "Stats", "TopicOpenings"]
