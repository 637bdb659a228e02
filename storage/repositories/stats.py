"""Anonymous case statistics: what stays after a case is purged."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from storage.models import CaseStatRow, table
from storage.records import Case, CaseStat
from storage.repositories.base import Repository

T = table(CaseStatRow)
DIMENSIONS = ("kind", "category", "age_group", "channel", "country", "language", "consent", "outcome")
UNKNOWN = "unknown"


class Stats(Repository):
    """The `case_stats` table."""

    __slots__ = ()

    async def add(self, case: Case) -> int:
        """Keep the anonymous facts of a case (no key, number, text or dates finer than a day)."""
        values = {
            "kind": str(case.kind), "category": case.category, "age_group": case.age_group,
            "channel": case.channel, "country": case.country, "language": case.language,
            "urgent": case.urgent, "consent": case.consent, "outcome": case.outcome, "rating": case.rating,
            "created_day": case.created_at.date().isoformat(),
            "closed_day": None if case.closed_at is None else case.closed_at.date().isoformat(),
        }  # fmt: skip
        return int((await self._session.execute(T.insert().values(**values).returning(T.c.id))).scalar_one())

    async def all(self) -> list[CaseStat]:
        """Every statistics row, oldest first."""
        return [CaseStat(**row._mapping) for row in await self._session.execute(select(T).order_by(T.c.id))]

    async def summary(self) -> dict[str, Any]:
        """Totals: {"total", "urgent", "by_<dimension>": {value|"unknown": n}, "rating": {"count", "average"}}."""
        totals = select(func.count(), func.count(T.c.rating), func.avg(T.c.rating))
        total, rated, average = (await self._session.execute(totals.select_from(T))).one()
        urgent = (await self._session.execute(select(func.count()).where(T.c.urgent.is_(True)))).scalar_one()
        result: dict[str, Any] = {"total": int(total), "urgent": int(urgent)}
        for name in DIMENSIONS:
            column = T.c[name]
            rows = await self._session.execute(select(column, func.count()).group_by(column).order_by(column))
            result[f"by_{name}"] = {UNKNOWN if value is None else str(value): int(count) for value, count in rows}
        result["rating"] = {"count": int(rated), "average": None if average is None else round(float(average), 2)}
        return result
