"""Staff roles and the audit trail of their actions (no child text in either)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, select, update

from storage.fast_path import prepared
from storage.models import AuditRow, StaffRow, table
from storage.records import AuditEntry, StaffMember
from storage.repositories.base import Repository
from storage.values import Role

S = table(StaffRow)
A = table(AuditRow)

# Built once, with bind parameters for the values, so SQLAlchemy neither rebuilds nor re-hashes them on each
# call: staff lookups come with every case card and action, audit entries with reports (bench/README.md,
# findings, item 3).
_GET_STAFF = prepared(select(S).where(S.c.user_id == bindparam("user_id")))
_ADD_AUDIT = prepared(
    A.insert()
    .values(
        case_id=bindparam("case_id"), actor_alias=bindparam("actor_alias"), actor_id=bindparam("actor_id"),
        action=bindparam("action"), detail=bindparam("detail"), at=bindparam("at"),
    )
    .returning(A.c.id)
)


class Staff(Repository):
    """The `staff` table."""

    __slots__ = ()

    async def get(self, user_id: int) -> StaffMember | None:
        """The staff member with that Telegram id, or None."""
        row = (await self._session.execute(_GET_STAFF, {"user_id": user_id})).one_or_none()
        return None if row is None else _member(row)

    async def grant(self, user_id: int, role: str, alias: str, granted_by: int | None) -> StaffMember:
        """Give (or change) a role."""
        values = {"role": str(Role(role)), "alias": alias, "granted_by": granted_by, "granted_at": self._now()}
        statement = (
            self._insert(S)
            .values(user_id=user_id, **values)
            .on_conflict_do_update(index_elements=[S.c.user_id], set_=values)
            .returning(*S.c)
        )
        return _member((await self._session.execute(statement)).one())

    async def revoke(self, user_id: int) -> bool:
        """Take every role away; True if the user had one."""
        return await self._affected(delete(S).where(S.c.user_id == user_id)) > 0

    async def all(self) -> list[StaffMember]:
        """Everyone with a role, by role then alias."""
        statement = select(S).order_by(S.c.role, S.c.alias, S.c.user_id)
        return [_member(row) for row in await self._session.execute(statement)]


class Audit(Repository):
    """The `audit` table."""

    __slots__ = ()

    async def add(
        self, case_id: int | None, actor_alias: str, actor_id: int | None, action: str, detail: str | None = None
    ) -> int:
        """Record a staff action; `detail` must never hold the child's words."""
        values = {
            "case_id": case_id, "actor_alias": actor_alias, "actor_id": actor_id,
            "action": action, "detail": detail, "at": self._now(),
        }  # fmt: skip
        return int((await self._session.execute(_ADD_AUDIT, values)).scalar_one())

    async def for_case(self, case_id: int) -> list[AuditEntry]:
        """A case's audit trail, oldest first."""
        statement = select(A).where(A.c.case_id == case_id).order_by(A.c.id)
        return [AuditEntry(**row._mapping) for row in await self._session.execute(statement)]

    async def anonymise_case(self, case_id: int) -> int:
        """The case was purged: its audit rows keep only what was done on which day (anonymous counts),
        no case, no actor, no detail; return how many."""
        rows = (await self._session.execute(select(A.c.id, A.c.at).where(A.c.case_id == case_id))).all()
        by_day: dict[datetime, list[int]] = {}
        for row_id, at in rows:
            by_day.setdefault(at.replace(hour=0, minute=0, second=0, microsecond=0), []).append(row_id)
        for day, ids in by_day.items():
            anonymous = {"case_id": None, "actor_alias": "", "actor_id": None, "detail": None, "at": day}
            await self._session.execute(update(A).where(A.c.id.in_(ids)).values(anonymous))
        return len(rows)

    async def anonymous_counts(self) -> dict[str, int]:
        """How often each action was taken on cases since purged."""
        anonymous = A.c.case_id.is_(None) & (A.c.actor_alias == "")
        statement = select(A.c.action, func.count()).where(anonymous).group_by(A.c.action)
        return {str(action): int(count) for action, count in await self._session.execute(statement)}


def _member(row: Row[Any]) -> StaffMember:
    values = dict(row._mapping)
    values["role"] = Role(values["role"])
    return StaffMember(**values)
