"""Content as typed values: flows, texts per language, helplines per country, crisis words."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialogs.content_files import Located, Problem, flatten_texts, read_yaml
from dialogs.places import WEEKDAYS, CountryHelp, Helpline, OfficeHours, Region



class StepKind(StrEnum):
    QUESTION = "question"  # text, buttons and/or free input: the ordinary step
    ROUTE = "route"  # says nothing; goes to the first route whose condition holds
    SUMMARY = "summary"  # fills {summary} with the answers so far
    SUBMIT = "submit"  # stores the consented report as a case
    DISCARD = "discard"  # deletes the draft
    HELPLINES = "helplines"  # fills {helplines} with the numbers for COUNTRY
    LANGUAGE = "language"  # one button per shipped language
    CASE_STATUS = "case_status"  # the child's open case, or no_case_text
    RECEIPT = "receipt"  # the typed text is a receipt code
    RELAY = "relay"  # the typed text or file goes to the counsellor of the open case
    OFFICE_HOURS = "office_hours"  # fills {office_hours} with when counsellors answer
    FORGET = "forget"  # deletes everything linked to the child
    QUICK_EXIT = "quick_exit"  # clears the chat from the screen
    REGION = "region"  # "Where do you live?": the country's regions as buttons (dialogs/regions.py)


class InputKind(StrEnum):
    NONE = "none"
    TEXT = "text"  # text, or a voice note
    MEDIA = "media"  # pictures and files, several
    ANY = "any"


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    label: str
    goto: str
    value: str | None = None
    clear_urgent: bool = False
    say: str | None = None  # a text said when the button is pressed, before the step it leads to


@dataclass(frozen=True, slots=True)
class Route:
    goto: str
    when: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    flow: str
    file: str
    line: int
    kind: StepKind = StepKind.QUESTION
    text: str = ""
    field: str | None = None
    summary: str | None = None
    input: InputKind = InputKind.NONE
    next: str | None = None
    then: str | None = None
    optional: bool = False
    back: bool = True
    stop: bool = True
    urgent: bool = False
    reset: bool = False
    no_case_text: str | None = None
    case_kind: str = "report"  # for submit steps: report, consultation or link
    validate: str | None = None  # "link": the typed answer must look like a link or an account name
    invalid: str | None = None  # the text said when validation fails
    buttons: tuple[tuple[ButtonSpec, ...], ...] = ()
    routes: tuple[Route, ...] = ()

    def text_keys(self) -> list[str]:
        keys = [self.text, self.summary, self.no_case_text, self.invalid]
        keys += [key for row in self.buttons for button in row for key in (button.label, button.say)]
        return [key for key in keys if key]

    def targets(self) -> list[str]:
        found = [self.next, self.then] + [route.goto for route in self.routes]
        found += [button.goto for row in self.buttons for button in row]
        return [target for target in found if target]


@dataclass(frozen=True, slots=True)
class Content:
    start: str
    commands: dict[str, str]
    steps: dict[str, Step]
    texts: dict[str, dict[str, str]]
    helplines: dict[str, CountryHelp]
    crisis_words: dict[str, tuple[str, ...]]
    image_free_categories: frozenset[str]
    office_hours: dict[str, OfficeHours] = field(default_factory=dict)
    regions: dict[str, dict[str, Region]] = field(default_factory=dict)  # by country, then key (dialogs/regions.py)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.texts)

    def text(self, lang: str, key: str) -> str:
        return self.texts[lang].get(key) or self.texts[next(iter(self.texts))].get(key, key)


class ContentInvalid(Exception):
    """Content has mistakes; each names its file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@dataclass(slots=True)
class _Reader:
    """Collects typed values and the problems met while reading them."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    text_lines: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)
    text_files: dict[str, dict[str, str]] = field(default_factory=dict)
    unreadable: list[Problem] = field(default_factory=list)  # files that could not be parsed

    def fail(self, where: Located | None, message: str, key: str | None = None) -> None:
        file = getattr(where, "file", "content")
        line = getattr(where, "key_lines", {}).get(key, getattr(where, "line", 1)) if where is not None else 1
        self.problems.append(Problem(file, line, message))

    def yaml(self, path: Path) -> Any:
        data = read_yaml(path, self.root, self.unreadable)
        return None if self.unreadable else data


def read_content(root: Path) -> tuple[Content | None, list[Problem], "_Reader"]:
    """Read every content file; return the content (None if a file is unreadable) and its problems."""
    reader = _Reader(root)
    content = _read_all(reader, root)
    if reader.unreadable:
        # A syntax error hides a whole file: report it alone, not the hundreds of texts it seems to lack.
        return None, reader.unreadable, reader
    return content, reader.problems, reader


def _read_all(reader: _Reader, root: Path) -> Content | None:
    steps: dict[str, Step] = {}
    start, commands, image_free = "", {}, frozenset()
    for path in sorted((root / "flows").glob("*.yaml")):
        data = reader.yaml(path)
        if not isinstance(data, Located):
            continue
        start = data.get("start", start)
        commands.update(data.get("commands") or {})
        image_free |= frozenset(data.get("image_free_categories") or ())
        for step_id, raw in (data.get("steps") or {}).items():
            if step_id in steps:
                reader.fail(data.get("steps"), f"step '{step_id}' is defined twice (also {steps[step_id].file})", step_id)
            step = _parse_step(reader, path.stem, step_id, raw)
            if step:
                steps[step_id] = step
    texts: dict[str, dict[str, str]] = {}
    # texts/<lang>.yaml for children, texts/staff/<lang>.yaml for staff…: one language, several files.
    for path in sorted((root / "texts").rglob("*.yaml"), key=lambda p: (len(p.parts), p)):
        data = reader.yaml(path)
        if isinstance(data, Located):
            flat = flatten_texts(data)
            reader.text_lines.setdefault(path.stem, {}).update(flat)
            reader.text_files.setdefault(path.stem, {}).update({key: data.file for key in flat})
            texts.setdefault(path.stem, {}).update({key: value for key, (value, _) in flat.items()})
    helplines = _parse_helplines(reader, reader.yaml(root / "helplines.yaml"))
    crisis = _parse_crisis(reader, reader.yaml(root / "crisis.yaml"))
    office_hours = _parse_office_hours(reader, reader.yaml(root / "office_hours.yaml"))
    if reader.unreadable:
        return None
    if not steps or not texts:
        reader.unreadable.append(Problem(str(root), 1, "no flows or no texts found"))
        return None
    return Content(start, commands, steps, texts, helplines, crisis, image_free, office_hours)


def _parse_step(reader: _Reader, flow: str, step_id: str, raw: Any) -> Step | None:
    if not isinstance(raw, Located):
        reader.problems.append(Problem(f"content/flows/{flow}.yaml", 1, f"step '{step_id}' must be a mapping"))
        return None
    known = set(Step.__dataclass_fields__) - {"id", "flow", "file", "line"}
    for key in raw:
        if key not in known:
            reader.fail(raw, f"step '{step_id}': unknown setting '{key}'", key)
    try:
        rows = []
        for row in raw.get("buttons") or ():
            row = row if isinstance(row, list) else [row]
            rows.append(tuple(ButtonSpec(
                label=str(b["label"]), goto=str(b["goto"]),
                value=None if b.get("value") is None else str(b["value"]),
                clear_urgent=bool(b.get("clear_urgent", False)), say=b.get("say"),
            ) for b in row))
        routes = tuple(Route(goto=str(r["goto"]), when=dict(r.get("when") or {})) for r in raw.get("routes") or ())
        return Step(
            id=step_id, flow=flow, file=raw.file, line=raw.line,
            kind=StepKind(raw.get("kind", "question")), text=str(raw.get("text", "")),
            field=raw.get("field"), summary=raw.get("summary"), input=InputKind(raw.get("input", "none")),
            next=raw.get("next"), then=raw.get("then"), optional=bool(raw.get("optional", False)),
            back=bool(raw.get("back", True)), stop=bool(raw.get("stop", True)),
            urgent=bool(raw.get("urgent", False)), reset=bool(raw.get("reset", False)),
            no_case_text=raw.get("no_case_text"), case_kind=str(raw.get("case_kind", "report")),
            validate=raw.get("validate"), invalid=raw.get("invalid"), buttons=tuple(rows), routes=routes,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        reader.fail(raw, f"step '{step_id}': malformed ({error!s}); see content/README.md")
        return None


def _parse_helplines(reader: _Reader, data: Any) -> dict[str, CountryHelp]:
    result: dict[str, CountryHelp] = {}
    if not isinstance(data, Located):
        return result
    for country, groups in data.items():
        if not isinstance(groups, Located):
            reader.fail(data, f"country '{country}' must list emergency, helplines and report_online", country)
            continue
        parsed = {}
        for group in ("emergency", "helplines", "report_online"):
            entries = []
            for entry in groups.get(group) or ():
                if not isinstance(entry, Located) or "name" not in entry or not ("phone" in entry or "url" in entry):
                    reader.fail(groups, f"{country}.{group}: each entry needs a name and a phone or url", group)
                    continue
                name = entry["name"] if isinstance(entry["name"], dict) else {}
                only_for = frozenset(str(value) for value in entry.get("only_for") or ())
                entries.append((entry, Helpline(dict(name), str(entry.get("phone", "")), entry.get("url"), only_for)))
            parsed[group] = entries
        result[country] = CountryHelp(*(tuple(h for _, h in parsed[g]) for g in ("emergency", "helplines", "report_online")))
        for entry, helpline in (pair for entries in parsed.values() for pair in entries):
            reader.text_lines.setdefault("@helplines", {})[f"{country}:{helpline.phone or helpline.url}"] = ("", entry.line)
    return result


def _parse_crisis(reader: _Reader, data: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(data, Located):
        return {}
    words = {}
    for lang, entries in data.items():
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            reader.fail(data, f"crisis words for '{lang}' must be a list of phrases, each in double quotes "
                              f"(\"not: ...\" needs them)", lang)
            continue
        words[lang] = tuple(entry.strip().lower() for entry in entries if entry.strip())
    return words


def _parse_office_hours(reader: _Reader, data: Any) -> dict[str, OfficeHours]:
    hours: dict[str, OfficeHours] = {}
    for country, entry in (data.items() if isinstance(data, Located) else ()):
        try:
            days = tuple(str(day).lower() for day in entry["days"])
            if not set(days) <= set(WEEKDAYS):
                raise ValueError(f"days must be among {', '.join(WEEKDAYS)}")
            ZoneInfo(entry["timezone"])
            hours[country] = OfficeHours(entry["timezone"], days, time.fromisoformat(entry["from"]),
                                         time.fromisoformat(entry["to"]))
        except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError) as error:
            reader.fail(data, f"office hours for {country}: {error!s} (need timezone, days, from, to)", country)
    return hours
