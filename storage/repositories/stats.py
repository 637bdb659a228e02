"""Anonymous statistics: counters by day and by coarse values, which outlive every case and child.

A transaction's counts are kept in memory and written just before it commits (`flush`), one upsert
per counter, in the counters' key order. Counters are the rows every transaction shares: taken late
and always in the same order, concurrent transactions (several processes on PostgreSQL) wait for
one another briefly instead of deadlocking, and a counter counted twice costs one statement.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

from sqlalchemy import Executable, bindparam, select

from storage.fast_path import prepared
from storage.models import StatCountRow, StatPostRow, table
from storage.records import StatCount
from storage.repositories.base import Context, Repository
from storage.values import StatEvent

T = table(StatCountRow)
P = table(StatPostRow)
NOT_SAID = ""  # stored for None: a NULL would never match in the key
NO_DURATION = -1
VALUES = ("region", "channel", "language", "age_group", "kind", "harm", "outcome")
_KEY = ("day", "event", *VALUES, "urgent", "minutes")  # a counter's primary key, in the order `count` keeps it
_COUNT: dict[str, Executable] = {}  # the upsert, built once per dialect


class Stats(Repository):
    """The `stat_counts` and `stat_posts` tables."""

    __slots__ = ("_pending",)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._pending: Counter[tuple[Any, ...]] = Counter()  # a counter's key (as `_KEY`) -> how many more

    async def count(self, day: date, event: StatEvent, *, urgent: bool = False, minutes: int | None = None,
                    **values: str | None) -> None:
        """One more `event` on `day` with these values (region, channel, language, age_group, kind,
        harm, outcome; a value left out or None is "not said")."""
        unknown = set(values) - set(VALUES)
        if unknown:
            raise TypeError(f"not a statistics value: {sorted(unknown)}")
        self._pending[(day.isoformat(), str(event), *(values.get(name) or NOT_SAID for name in VALUES),
                       urgent, NO_DURATION if minutes is None else max(0, minutes))] += 1

    async def flush(self) -> None:
        """Write the counts of this transaction (storage/db.py calls it before every commit)."""
        if not self._pending:  # most transactions count nothing
            return
        pending, self._pending = self._pending, Counter()
        for key in sorted(pending):
            params = dict(zip(_KEY, key, strict=True))
            params["n"] = pending[key]
            await self._session.execute(self._count_statement(), params)

    def _count_statement(self) -> Executable:
        statement = _COUNT.get(self._ctx.dialect)
        if statement is None:
            keys = [column for column in T.c if column.primary_key]
            insert = self._insert(T).values({**{column.name: bindparam(column.name) for column in keys},
                                             "count": bindparam("n")})
            statement = _COUNT[self._ctx.dialect] = prepared(
                insert.on_conflict_do_update(index_elements=keys, set_={"count": T.c.count + insert.excluded.count}))
        return statement

    async def between(self, first: date, last: date) -> list[StatCount]:
        """Every counter from `first` to `last`, both included (this transaction's counts too)."""
        await self.flush()
        statement = select(T).where(T.c.day >= first.isoformat(), T.c.day <= last.isoformat()).order_by(T.c.day)
        return [_count(row._mapping) for row in await self._session.execute(statement)]

    async def claim_post(self, period: str, at: datetime) -> bool:
        """True once per period: the process that gets it posts the figures, every other one does not."""
        statement = self._insert(P).values(period=period, posted_at=at).on_conflict_do_nothing().returning(P.c.period)
        return (await self._session.execute(statement)).scalar_one_or_none() is not None


def _count(row: Any) -> StatCount:
    values = {name: row[name] or None for name in VALUES}
    minutes = None if row["minutes"] == NO_DURATION else int(row["minutes"])
    return StatCount(day=date.fromisoformat(row["day"]), event=StatEvent(row["event"]), urgent=bool(row["urgent"]),
                     minutes=minutes, count=int(row["count"]), **values)
