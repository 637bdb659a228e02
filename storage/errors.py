"""Exceptions the storage layer raises; messages never carry ids or text."""
from __future__ import annotations


class StorageError(Exception):
    """Base of every storage error."""


class ConcurrentUpdate(StorageError):
    """The row changed (or appeared, or vanished) since it was read: reload and retry."""


class DuplicateNumber(StorageError):
    """A case with that number exists: make a new number and retry."""


class NotFound(StorageError, LookupError):
    """The row to change does not exist."""


class StorageFull(StorageError):
    """The disk (or the database's size limit) is full: nothing of the transaction was stored. Retry
    when there is space again; until then acknowledge nothing that depends on it."""


class StorageBusy(StorageError):
    """Another connection held the database's write lock for too long (SQLite): nothing was stored."""


class SealBroken(StorageError):
    """A sealed value does not open."""


class UnknownKey(SealBroken):
    """No key in DATA_KEY sealed this value: a key is missing from the setting (keep the old keys
    when rotating). Never read as absent: a misconfiguration must not overwrite good data."""


class Misplaced(SealBroken):
    """A key in DATA_KEY sealed this value, but for another table, column or row, or it was altered
    since: someone with write access to the database moved it or tampered with it."""
