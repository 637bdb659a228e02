"""Column types and the small protocols storage depends on."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

Clock = Callable[[], datetime]


class Sealer(Protocol):
    """What storage needs from bot.privacy.Privacy: JSON values in, opaque bytes out, each bound to
    its place (`place`) so that it opens there and nowhere else."""

    def seal(self, value: Any, place: bytes) -> bytes: ...

    def unseal(self, token: bytes | None, place: bytes) -> Any:
        """The value; None stays None. Raises storage.errors.Misplaced (sealed for another place, or
        altered) or storage.errors.UnknownKey (no key it holds sealed it)."""


def place(table: str, column: str, row: object) -> bytes:
    """Where a sealed value lives, as the associated data that binds it there: a value copied into
    another row, column or table does not open. `row` is a key known when the row is written."""
    return f"{table}\x1f{column}\x1f{row}".encode()


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every dialect."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # A naive value would be silently misread as UTC on one server and local time on another.
            raise ValueError("storage needs timezone-aware datetimes")
        value = value.astimezone(UTC)
        # SQLite has no zone: store naive UTC in one fixed format so text comparison orders correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
