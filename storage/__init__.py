"""Storage: the only place that knows SQL. Repositories return frozen dataclasses, never ORM rows."""
from __future__ import annotations

from storage.db import Database, Transaction
from storage.errors import (
    ConcurrentUpdate, DuplicateNumber, Misplaced, NotFound, SealBroken, StorageBusy, StorageError, StorageFull, UnknownKey,
)
from storage.migrate import current_revision, head_revision, upgrade
from storage.records import (
    AuditEntry, Case, CaseMessage, Conversation, InboxItem, MarkedSent, OutboxItem, StaffMember, StaffTopic,
    StatCount,
)
from storage.types import Clock, Sealer, utc_now
from storage.values import (
    FINISHED,
    KEEP,
    CaseKind,
    CaseStatus,
    ChannelName,
    Consent,
    InboxStatus,
    Keep,
    Kind,
    Outcome,
    OutboxStatus,
    Priority,
    Role,
    StatEvent,
    Target,
)

__all__ = [
    "FINISHED", "KEEP", "AuditEntry", "Case", "CaseKind", "CaseMessage", "CaseStatus", "ChannelName", "Clock",
    "ConcurrentUpdate", "Consent", "Conversation", "Database", "DuplicateNumber", "InboxItem", "InboxStatus", "Keep", "Kind",
    "MarkedSent", "Misplaced", "NotFound", "Outcome", "OutboxItem", "OutboxStatus", "Priority", "Role", "SealBroken", "Sealer",
    "StaffMember", "StaffTopic", "StatCount", "StatEvent", "StorageBusy", "StorageError", "StorageFull", "Target",
    "Transaction", "UnknownKey", "current_revision", "head_revision", "upgrade", "utc_now",
]  # fmt: skip
