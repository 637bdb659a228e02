"""Regions (content/regions.yaml): per country, the regions a deployment serves, their names in every
language, and the office hours and helplines a region has of its own (else the country's).

A region is known everywhere by its key (lowercase English: `kyiv`), and a case keeps nothing finer.
The file is optional: without it a deployment has no regions and works as one country.
"""
from __future__ import annotations

import re
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from dialogs.content import Content, _parse_helplines, _parse_office_hours, _Reader
from dialogs.content_files import Located, Problem
from dialogs.places import CountryHelp, OfficeHours, Region

FILE = "regions.yaml"
KEY = re.compile(r"[a-z][a-z_]{1,15}")  # lowercase English; short enough for a button's payload (64 bytes)
HELP_GROUPS = ("emergency", "helplines", "report_online")


class NoRegion(StrEnum):
    """The child's answers to "Where do you live?" that are not a region (kept in the state only)."""

    ELSEWHERE = "elsewhere"  # "Another place"
    UNSAID = "unsaid"  # "I'd rather not say"


def region_of(content: Content, country: str, key: str | None) -> Region | None:
    """The region `key` of `country`, or None (no key, another place, not said, unknown)."""
    return content.regions.get(country, {}).get(key or "")


def help_for(content: Content, country: str, region: str | None) -> CountryHelp:
    """The country's helplines with the region's own groups in their place."""
    base = content.helplines[country]
    found = region_of(content, country, region)
    if found is None or found.help is None:
        return base
    return CountryHelp(*(getattr(found.help if group in found.help_groups else base, group) for group in HELP_GROUPS))


def hours_for(content: Content, country: str, region: str | None) -> OfficeHours | None:
    found = region_of(content, country, region)
    if found is not None and found.office_hours is not None:
        return found.office_hours
    return content.office_hours.get(country)


def with_regions(content: Content, reader: _Reader) -> Content:
    """The content with content/regions.yaml read into it (problems go to the reader)."""
    path = reader.root / FILE
    if not path.exists():
        return content
    data = reader.yaml(path)
    if data is None:
        reader.problems.extend(reader.unreadable)  # a syntax error: named with its line
        return content
    return replace(content, regions=_parse(reader, data))


def _parse(reader: _Reader, data: Any) -> dict[str, dict[str, Region]]:
    result: dict[str, dict[str, Region]] = {}
    if not isinstance(data, Located):
        reader.problems.append(Problem(f"content/{FILE}", 1, "must map each country to its regions"))
        return result
    for country, regions in data.items():
        if not isinstance(regions, Located):
            reader.fail(data, f"{country}: must map region keys to their names", country)
            continue
        result[country] = {}
        for key, raw in regions.items():
            region = _region(reader, country, key, raw, regions)
            if region is not None:
                result[country][key] = region
    return result


def _region(reader: _Reader, country: str, key: str, raw: Any, where: Located) -> Region | None:
    if not KEY.fullmatch(key) or key in set(NoRegion):
        reader.fail(where, f"{country}: region key '{key}' must be lowercase English letters or _ (2-16), "
                           f"not {' or '.join(NoRegion)}", key)
        return None
    if not isinstance(raw, Located) or not isinstance(raw.get("name"), dict):
        reader.fail(where, f"{country}.{key}: needs 'name' with the region's name in every language", key)
        return None
    unknown = set(raw) - {"name", "office_hours", *HELP_GROUPS}
    if unknown:
        reader.fail(raw, f"{country}.{key}: unknown setting(s) {', '.join(sorted(unknown))}", sorted(unknown)[0])
    hours = None
    if raw.get("office_hours") is not None:
        hours = _parse_office_hours(reader, _located({f"{country}.{key}": raw["office_hours"]}, raw)).get(f"{country}.{key}")
    groups = frozenset(group for group in HELP_GROUPS if group in raw)
    help = None
    if groups:
        lists = _located({group: raw[group] for group in groups}, raw)
        help = _parse_helplines(reader, _located({f"{country}.{key}": lists}, raw)).get(f"{country}.{key}")
    names = {str(lang): str(name).strip() for lang, name in raw["name"].items() if str(name).strip()}
    return Region(key, names, hours, help, groups)


def _located(values: dict[str, Any], where: Located) -> Located:
    """A mapping built here that reports problems at `where`'s line."""
    made = Located(values)
    made.file, made.line = where.file, where.line
    made.key_lines = {key: where.line for key in values}
    return made


def check_regions(content: Content, errors: list[Problem]) -> None:
    """Every region named in every language of the texts; keys unique across a country's names."""
    for country, regions in content.regions.items():
        if country not in content.helplines:
            errors.append(Problem(f"content/{FILE}", 1, f"{country}: no such country in helplines.yaml"))
        for region in regions.values():
            for lang in content.languages:
                if not region.names.get(lang):
                    errors.append(Problem(f"content/{FILE}", 1, f"{country}.{region.key}: no name in '{lang}'"))


def region_keys(content_dir: Path, country: str) -> frozenset[str]:
    """The region keys of `country` in a content folder (for the settings check at start)."""
    reader = _Reader(content_dir)
    path = content_dir / FILE
    data = reader.yaml(path) if path.exists() else None
    return frozenset(_parse(reader, data).get(country.upper(), {})) if data is not None else frozenset()
