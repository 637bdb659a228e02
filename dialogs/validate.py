"""The content checker: every mistake an admin can make, named by file and line."""
from __future__ import annotations

import re
import string
from collections import deque
from pathlib import Path

from dialogs.content import Content, ContentInvalid, InputKind, Step, StepKind, _Reader, read_content
from dialogs.content_files import Problem
from dialogs.crisis import check_crisis_phrases
from dialogs.payloads import OutsideButton
from dialogs.regions import check_regions, with_regions
from dialogs.steps import BuiltinStep, SpecialTarget

MAX_STEP_ID = 40  # keeps "o1|<step>|<n>" well under Telegram's 64-byte callback_data
PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{1,18}$")
LONG_TEXT = 1000
LONG_BUTTON = 40
# Slots the engine or the service fills; a text may use only these.
KNOWN_SLOTS = {"helplines", "summary", "case_number", "receipt_code", "status", "draft_hours", "retention_days",
               "report_online", "alias", "outcome", "office_hours", "text", "reason", "role", "list", "minutes",
               "count", "numbers", "score", "link", "period", "cases", "kind", "news", "date", "channel", "region",
               "sla", "urgent", "late", "holder"}
LONG_WORD = re.compile(r"[^\W\d_]{4,}")
VALIDATORS = {"link"}


def load_content(root: Path) -> Content:
    """Read and check content; raise ContentInvalid listing every mistake."""
    content, problems, reader = read_content(root)
    content = with_regions(content, reader) if content else None
    errors, _ = check(content, reader) if content else ([], [])
    if problems or errors or content is None:
        raise ContentInvalid(problems + errors)
    return content


def check_content(root: Path, default_language: str | None = None) -> tuple[list[Problem], list[Problem]]:
    """Errors and warnings for `run_bot.py check-content`."""
    content, problems, reader = read_content(root)
    content = with_regions(content, reader) if content else None
    if content is None:
        return problems, []
    errors, warnings = check(content, reader, default_language)
    return problems + errors, warnings


def check(content: Content, reader: _Reader, default_language: str | None = None
          ) -> tuple[list[Problem], list[Problem]]:
    errors: list[Problem] = []
    warnings: list[Problem] = []

    def at(step: Step, message: str) -> None:
        errors.append(Problem(step.file, step.line, f"step '{step.id}': {message}"))

    first_file = next(iter(content.steps.values())).file
    if content.start not in content.steps:
        errors.append(Problem(first_file, 1, f"start step '{content.start}' does not exist"))
    for name in BuiltinStep:
        if name not in content.steps:
            errors.append(Problem(first_file, 1, f"required step '{name}' is missing (the bot sends children there)"))
    for command, target in content.commands.items():
        if target not in content.steps:
            errors.append(Problem(first_file, 1, f"command /{command} goes to unknown step '{target}'"))

    for step in content.steps.values():
        if len(step.id.encode()) > MAX_STEP_ID or "|" in step.id:
            at(step, f"the name is too long or has '|' (at most {MAX_STEP_ID} bytes)")
        if step.id in set(OutsideButton):
            at(step, "this name is taken by the bot's own buttons; choose another")
        for target in step.targets():
            if target not in content.steps and target not in set(SpecialTarget):
                at(step, f"goes to unknown step '{target}'")
        _check_shape(step, at)

    reachable = _reachable(content)
    for step in content.steps.values():
        if step.id not in reachable:
            at(step, "cannot be reached from the start, a command or another step")

    _check_texts(content, reader, errors, warnings, default_language)
    _check_helplines(content, reader, errors)
    check_regions(content, errors)
    check_crisis_phrases(reader.root, content.languages, errors, warnings)
    return errors, warnings


def _check_shape(step: Step, at) -> None:
    if step.kind is StepKind.ROUTE:
        if not step.routes or step.routes[-1].when:
            at(step, "a route step needs routes, the last one without 'when' (the default)")
        return
    if not step.text:
        at(step, "has no text")
    if step.input is not InputKind.NONE and not step.next and step.kind not in (StepKind.RECEIPT, StepKind.RELAY):
        at(step, "takes input but has no 'next'")
    if step.validate is not None and (step.validate not in VALIDATORS or not step.invalid):
        at(step, f"'validate' must be one of {sorted(VALIDATORS)} and needs an 'invalid' text")
    if step.kind is StepKind.REGION and not step.next:
        at(step, "a region step needs 'next' (where the child goes once they answered, or when not asked)")
    if step.kind in (StepKind.RELAY, StepKind.CASE_STATUS) and not step.next:
        at(step, f"a {step.kind} step needs 'next' (where the child goes once they "
                 f"{'wrote' if step.kind is StepKind.RELAY else 'picked a report'})")
    if step.input is not InputKind.NONE and not step.field and step.kind is StepKind.QUESTION:
        at(step, "takes input but has no 'field' to keep the answer in")
    for row in step.buttons:
        for button in row:
            if button.value is not None and not step.field:
                at(step, f"button '{button.label}' has a value but the step has no 'field'")
    has_way = step.buttons or step.input is not InputKind.NONE or step.then or step.back or step.stop
    if not has_way and step.kind not in (StepKind.QUICK_EXIT, StepKind.LANGUAGE):
        at(step, "is a dead end: no buttons, no input, no 'then', and Back and Stop are off")


def _reachable(content: Content) -> set[str]:
    queue = deque([content.start, *content.commands.values(), *BuiltinStep])
    seen: set[str] = set()
    while queue:
        step_id = queue.popleft()
        if step_id in seen or step_id not in content.steps:
            continue
        seen.add(step_id)
        queue.extend(content.steps[step_id].targets())
    return seen


def _slots(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError:
        return {"{"}


def _check_texts(content: Content, reader: _Reader, errors: list[Problem], warnings: list[Problem],
                 default_language: str | None) -> None:
    used = {key: (step, "texts") for step in content.steps.values() for key in step.text_keys()}
    used |= {key: (step, "texts/staff") for step, key in _staff_keys(content)}
    button_labels = {b.label for step in content.steps.values() for row in step.buttons for b in row}
    reference = "en" if "en" in content.texts else content.languages[0]
    compared = [lang for lang in dict.fromkeys([reference, default_language]) if lang in content.texts]
    for lang, texts in content.texts.items():
        for key, (step, folder) in used.items():
            if not texts.get(key):
                errors.append(Problem(f"content/{folder}/{lang}.yaml", 1,
                                      f"text '{key}' (used by step '{step.id}' in {step.file}) is missing"))
        for key, (value, line) in reader.text_lines[lang].items():
            file = reader.text_files[lang][key]
            slots = _slots(value)
            if slots - KNOWN_SLOTS:
                errors.append(Problem(file, line, f"text '{key}' has unknown or broken slots {sorted(slots - KNOWN_SLOTS)}"))
            other = content.texts[reference].get(key)
            if other is None and lang != reference:
                warnings.append(Problem(file, line, f"text '{key}' is not in {reference}.yaml"))
            elif other is not None and _slots(other) != slots:
                errors.append(Problem(file, line, f"text '{key}' uses slots {sorted(slots)} but {reference}.yaml uses {sorted(_slots(other))}"))
            for same_as in compared if lang != reference else ():  # the reference is what others translate
                if same_as != lang and value == content.texts[same_as].get(key) and _worth_translating(content, key):
                    warnings.append(Problem(file, line, f"text '{key}' is the same as in {same_as}.yaml: untranslated?"))
                    break
            if key in button_labels and len(value) > LONG_BUTTON:
                warnings.append(Problem(file, line, f"button '{key}' is {len(value)} characters: phones cut it"))
            if len(value) > LONG_TEXT:
                warnings.append(Problem(file, line, f"text '{key}' is {len(value)} characters: split it into cards"))
        for key in content.texts[reference]:
            if key not in texts:
                where = reader.text_files[reference][key].replace(f"{reference}.yaml", f"{lang}.yaml")
                errors.append(Problem(where, 1, f"text '{key}' from {reference}.yaml is missing"))


def _worth_translating(content: Content, key: str) -> bool:
    """Whether a text that reads the same as in another language may have been left untranslated.
    Not when it has no word of four letters or more (numbers, emoji, "9–12", "OK", "{minutes} min":
    such short words are often written alike), nor when it reads the same in every one of three or
    more languages (names such as "Instagram" are written alike everywhere). With only two
    languages, every identical text with a longer word is asked about."""
    values = {texts.get(key) for texts in content.texts.values()}
    value = content.texts[content.languages[0]].get(key) or ""
    if not LONG_WORD.search(re.sub(r"\{\w+\}", "", value)):
        return False
    return len(values) > 1 or len(content.texts) < 3


def _staff_keys(content: Content):
    """The staff wording every answer shown on a case card needs: `operator.field.<field>` for the
    question, and `operator.value.<button label>` for each answer chosen with a button."""
    for step in content.steps.values():
        if not (step.summary and step.field):
            continue
        yield step, f"operator.field.{step.field}"
        for row in step.buttons:
            for button in row:
                if button.value is not None:
                    yield step, f"operator.value.{button.label}"
        if step.input is InputKind.TEXT:
            yield step, "operator.value.voice"


def _check_helplines(content: Content, reader: _Reader, errors: list[Problem]) -> None:
    lines = reader.text_lines.get("@helplines", {})
    values = {b.value for step in content.steps.values() for row in step.buttons for b in row if b.value}
    if not content.helplines:
        errors.append(Problem("content/helplines.yaml", 1, "no countries"))
    for country, help in content.helplines.items():
        if not help.emergency:
            errors.append(Problem("content/helplines.yaml", 1, f"{country}: no emergency numbers"))
        for helpline in help.emergency + help.helplines + help.report_online:
            line = lines.get(f"{country}:{helpline.phone or helpline.url}", ("", 1))[1]
            if helpline.only_for - values:
                errors.append(Problem("content/helplines.yaml", line, f"{country}: 'only_for' names "
                                      f"{sorted(helpline.only_for - values)}, which no button's value is"))
            if helpline.phone and not PHONE.match(helpline.phone):
                errors.append(Problem("content/helplines.yaml", line, f"{country}: malformed phone number '{helpline.phone}'"))
            for lang in content.languages:
                if not helpline.name.get(lang):
                    errors.append(Problem("content/helplines.yaml", line, f"{country}: '{helpline.phone or helpline.url}' has no name in '{lang}'"))
