"""One clear log line when the database cannot store what arrives (a full disk), one when it can again.

A channel's receiver tells it each time storing updates failed or worked. Nothing that was not stored is
acknowledged meanwhile (a webhook answers 503, polling keeps its offset), so the platform sends it
again and nothing is lost; the log says it once, not once per update.
"""
from __future__ import annotations

import logging

from storage import StorageBusy, StorageError, StorageFull

log = logging.getLogger(__name__)


class StorageWatch:
    def __init__(self) -> None:
        self.troubled: type[StorageError] | None = None  # what is wrong now (StorageFull, StorageBusy)

    def failed(self, error: BaseException) -> bool:
        """Storing failed; True if it failed for want of space or a lock (answer 503: try again later)."""
        if not isinstance(error, (StorageFull, StorageBusy)):
            return False
        if self.troubled is not type(error):
            self.troubled = type(error)
            what = "the disk or the database is full" if isinstance(error, StorageFull) else "the database is locked"
            log.error(f"{what}: updates are not acknowledged until they can be stored (the platform sends them "
                      "again); free some space, and the bot goes on by itself", extra={"reason": type(error).__name__})
        return True

    def stored(self) -> None:
        if self.troubled is not None:
            self.troubled = None
            log.warning("updates are stored again")
