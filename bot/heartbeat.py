"""Who is alive: each process beats in the `heartbeats` table about once a second.

Its delivery worker and inbox processor hold leases (outbox items, stored updates) under one owner
name, the process's; a lease whose holder has not beaten for a few seconds is free for any other
process (storage/repositories/leases.py), so after a `kill -9` what the dead process held moves on
within seconds, not after a whole lease. On SQLite (one process by design) a starting process
releases every lease of another owner at once; on PostgreSQL it marks gone at once any process of
this machine that is gone for sure (bot/same_host.py), such as the one it replaces after a `kill -9`.
A process that stops gracefully marks itself gone.

The cost of presuming a silent process dead: one whose event loop stalls longer than
`STALE_AFTER` (or cannot reach the database that long) may see another process take over what it
held; a stored update is then handled once all the same (marked done only by its claimant, else
rolled back), a message may be sent twice (the window in bot/delivery/worker.py).
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

from bot import same_host
from storage import Database
from storage.repositories.leases import BEAT_SECONDS, STALE_AFTER

log = logging.getLogger(__name__)

OWNER_LIMIT = 64  # claimed_by and heartbeats.owner are VARCHAR(64)
__all__ = ["BEAT_SECONDS", "STALE_AFTER", "Heartbeat", "process_owner"]


def process_owner() -> str:
    """hostname:pid:start:space:random, cut to fit: unique even when a restarted container has the same
    pid; bot/same_host.py reads pid, start and space back."""
    tail = f":{os.getpid()}:{same_host.stamp()}:{secrets.token_hex(4)}"
    return socket.gethostname()[: OWNER_LIMIT - len(tail)] + tail


class Heartbeat:
    """One process's beat; `start` before its loops claim anything, `run` in the background."""

    def __init__(self, db: Database, owner: str, every: float = BEAT_SECONDS) -> None:
        self.db, self.owner, self.every = db, owner, every

    async def start(self) -> int:
        """The first beat; processes of this machine that are gone marked so; on SQLite, every lease
        of another owner released (how many)."""
        async with self.db.transaction() as tx:
            await tx.heartbeats.beat(self.owner)
            gone = [owner for owner in await tx.heartbeats.alive() if owner != self.owner and same_host.stopped(owner)]
            for owner in gone:
                await tx.heartbeats.gone(owner)
            released = await tx.heartbeats.release_others(self.owner) if self.db.dialect == "sqlite" else 0
        if gone:
            log.info("stopped processes of this machine: their leases are free", extra={"count": len(gone)})
        if released:
            log.info("leases of a stopped process released", extra={"count": released})
        return released

    async def run(self, stop: asyncio.Event) -> None:
        """Beat every `every` seconds until `stop`; then mark this process gone."""
        while not stop.is_set():
            try:
                async with self.db.transaction() as tx:
                    await tx.heartbeats.beat(self.owner)
            except Exception as error:  # noqa: BLE001 — beating goes on; others may presume us dead meanwhile
                log.warning("heartbeat failed", extra={"reason": type(error).__name__})
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.every)
            except TimeoutError:
                pass

    async def gone(self) -> None:
        """This process stops: what it still holds is free for the others at once."""
        try:
            async with self.db.transaction() as tx:
                await tx.heartbeats.gone(self.owner)
        except Exception as error:  # noqa: BLE001 — then its leases free themselves a few seconds later
            log.warning("heartbeat not marked gone", extra={"reason": type(error).__name__})
