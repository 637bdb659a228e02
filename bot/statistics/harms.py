"""content/statistics.yaml: kinds of harm and their Child Helpline International categories, checked."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dialogs.content import read_content
from dialogs.content_files import Located, Problem, read_yaml

FILE = "statistics.yaml"
HARM_FIELDS = ("category", "link_kind")  # the answers that name a kind of harm (bot/statistics/record.py)
OTHER = "other"


@dataclass(frozen=True, slots=True)
class HarmMap:
    """Oberih's kinds of harm, in order, each with its CHI category."""

    harms: dict[str, str]
    chi_categories: tuple[str, ...]

    def chi(self, harm: str) -> str:
        """The CHI category of a kind of harm; one no longer in content counts as "other"."""
        return self.harms.get(harm, OTHER if OTHER in self.chi_categories else self.chi_categories[-1])


def load_harms(content_dir: Path) -> HarmMap:
    """The mapping, as far as it can be read (check-content reports its mistakes)."""
    harm_map, _ = _read(content_dir)
    return harm_map


def check_statistics_content(content_dir: Path) -> list[Problem]:
    """Every mistake in content/statistics.yaml, and kinds of harm in the flows that it leaves out."""
    harm_map, problems = _read(content_dir)
    file = f"{content_dir.name}/{FILE}"
    content, _, _ = read_content(content_dir)
    if content is None:
        return problems
    chosen = {button.value for step in content.steps.values() if step.field in HARM_FIELDS
              for row in step.buttons for button in row if button.value is not None}
    for harm in sorted(chosen - set(harm_map.harms)):
        problems.append(Problem(file, 1, f"kind of harm '{harm}' (a button in content/flows) is not under 'harms'"))
    reference = "en" if "en" in content.texts else content.languages[0]
    needed = [f"stats.harm.{harm}" for harm in harm_map.harms] + [f"stats.chi.{c}" for c in harm_map.chi_categories]
    for key in needed:
        if key not in content.texts[reference]:
            problems.append(Problem(file, 1, f"'{key}' has no text in texts/staff/{reference}.yaml"))
    return problems


def _read(content_dir: Path) -> tuple[HarmMap, list[Problem]]:
    problems: list[Problem] = []
    data = read_yaml(content_dir / FILE, content_dir, problems)
    file = f"{content_dir.name}/{FILE}"
    if not isinstance(data, Located):
        if not problems:  # read but empty or not a mapping (a syntax error is reported already)
            problems.append(Problem(file, 1, "must have 'chi_categories' and 'harms'"))
        return HarmMap({}, (OTHER,)), problems
    categories = data.get("chi_categories")
    if not isinstance(categories, list) or not categories or not all(isinstance(c, str) for c in categories):
        problems.append(Problem(file, data.key_lines.get("chi_categories", data.line),
                                "'chi_categories' must be a list of category names"))
        categories = [OTHER]
    harms: dict[str, str] = {}
    raw = data.get("harms")
    if not isinstance(raw, Located):
        problems.append(Problem(file, data.key_lines.get("harms", data.line), "'harms' must map each kind of harm to a category"))
        raw = Located()
        raw.key_lines = {}
    for harm, chi in raw.items():
        if chi not in categories:
            problems.append(Problem(file, raw.key_lines[harm], f"kind of harm '{harm}' maps to '{chi}', "
                                                               f"which is not in 'chi_categories'"))
            continue
        harms[harm] = chi
    return HarmMap(harms, tuple(categories)), problems
