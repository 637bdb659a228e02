"""SQLite's write-ahead log copied back into the database file in a thread, never in the event loop.

With `synchronous=NORMAL` a commit only appends to the log; a checkpoint copies the log into the
database file and waits for the disk (fsync). Left to SQLite, every thousandth page or so a commit
runs that checkpoint itself, and the event loop (storage/sqlite.py) stops for it: 5–8 ms on
this machine's disk. So the Database turns SQLite's automatic checkpoints off on its connection and
this thread checkpoints every second on a connection of its own. A PASSIVE checkpoint takes no lock
that the writer needs: commits go on meanwhile, and the thread waits for the disk while holding no GIL.
"""
from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

EVERY_SECONDS = 1.0


class Checkpoints:
    def __init__(self, path: str, every: float = EVERY_SECONDS) -> None:
        self._path = path
        self._every = every
        self._stop = threading.Event()
        self.passed = threading.Event()  # set after each checkpoint (tests wait on it)
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the checkpoint under way, if any (closing the last connection checkpoints anyway)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, check_same_thread=False)
        try:
            while not self._stop.wait(self._every):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.passed.set()
                except sqlite3.Error as error:  # e.g. briefly busy: the next second tries again
                    log.warning("sqlite checkpoint failed", extra={"reason": type(error).__name__})
        finally:
            connection.close()
