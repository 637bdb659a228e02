"""Helplines, office hours and regions as typed values (read by dialogs/content.py and dialogs/regions.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Helpline:
    name: dict[str, str]
    phone: str
    url: str | None = None
    only_for: frozenset[str] = frozenset()  # shown to a child only after a report with one of these answers


@dataclass(frozen=True, slots=True)
class CountryHelp:
    emergency: tuple[Helpline, ...]
    helplines: tuple[Helpline, ...]
    report_online: tuple[Helpline, ...] = ()


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """When counsellors answer, in the country's local time."""

    timezone: str
    days: tuple[str, ...]
    opens: time
    closes: time

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        return WEEKDAYS[local.weekday()] in self.days and self.opens <= local.time() < self.closes


@dataclass(frozen=True, slots=True)
class Region:
    """A region of content/regions.yaml: its key (lowercase English), its names, what it has of its own."""

    key: str
    names: dict[str, str]  # by language
    office_hours: OfficeHours | None = None
    help: CountryHelp | None = None  # the groups the region lists replace the country's
    help_groups: frozenset[str] = frozenset()

    def name(self, lang: str) -> str:
        return self.names.get(lang) or next(iter(self.names.values()), self.key)
