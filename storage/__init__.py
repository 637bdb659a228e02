"""Storage: the only place that knows SQL. Repositories return frozen dataclasses, never ORM rows."""
from __future__ import annotations

from storage.db import Database, Transaction
from storage.errors import ConcurrentUpdate, DuplicateNumber, NotFound, StorageError
from storage.migrate import current_revision, head_revision, upgrade
from storage.records import (
    AuditEntry, Case, CaseMessage, Conversation, InboxItem, OutboxItem, StaffMember, StatCount,
)
from storage.types import Clock, Sealer, utc_now
from storage.values import (
    FINISHED,
    KEEP,
    CaseKind,
    CaseStatus,
    Consent,
    InboxStatus,
    Keep,
    OutboxStatus,
    Priority,
    Role,
    StatEvent,
    Target,
)

__all__ = [
    "FINISHED", "KEEP", "AuditEntry", "Case", "CaseKind", "CaseMessage", "CaseStatus", "Clock",
    "ConcurrentUpdate", "Consent", "Conversation", "Database", "DuplicateNumber", "InboxItem", "InboxStatus", "Keep",
    "NotFound", "OutboxItem", "OutboxStatus", "Priority", "Role", "Sealer", "StaffMember", "StatCount", "StatEvent",
    "StorageError", "Target", "Transaction", "current_revision", "head_revision", "upgrade", "utc_now",
]  # fmt: skip
