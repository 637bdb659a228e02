"""Leases across processes: when a row held by one worker (an outbox item, a stored update) is free.

A row is free for the worker `owner` when nobody holds it, its lease ran out, `owner` holds it
itself, or its holder is dead: its heartbeat (bot/heartbeat.py) is older than `alive_since`. A holder
with no heartbeat row at all (a worker run without one, as in some tests) keeps its lease until it
runs out: only a heartbeat that stopped frees a lease early. So after a `kill -9` the rows the dead
process held are free a few seconds after its last beat, not a whole lease later.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import BindParameter, ColumnElement, Table, bindparam, or_, select

from storage.models import HeartbeatRow, table

H = table(HeartbeatRow)
BEAT_SECONDS = 1.0  # how often a process beats
STALE_AFTER = timedelta(seconds=4)  # a holder silent this long is presumed dead: its leases are free
ALIVE_SINCE = bindparam("alive_since", type_=H.c.beat_at.type)


def free_for(rows: Table, now: BindParameter[datetime], owner: BindParameter[str]) -> ColumnElement[bool]:
    """The condition "free for `owner`" over a table with `claimed_by` and `claimed_until`; its
    statements take the parameter `alive_since` too (`alive_since(now)`)."""
    dead = select(H.c.owner).where(H.c.owner == rows.c.claimed_by, H.c.beat_at < ALIVE_SINCE).exists()
    return or_(rows.c.claimed_until.is_(None), rows.c.claimed_until < now, rows.c.claimed_by == owner, dead)


def alive_since(now: datetime) -> datetime:
    """Holders that beat at or after this are alive."""
    return now - STALE_AFTER
