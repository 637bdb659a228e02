"""Reading content YAML while remembering the line of every mapping and key, for error messages."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class Located(dict):
    """A YAML mapping that knows its file, its line and the line of each key."""

    file: str
    line: int
    key_lines: dict[str, int]


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser: ten times faster
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Located:
    mapping = Located()
    mapping.file = loader.name
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[str(key)] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[str(key)] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path, root: Path, problems: list[Problem]) -> Any:
    """Parse one file; a syntax error becomes a Problem with its line instead of an exception."""
    name = str(path.relative_to(root.parent)) if path.is_relative_to(root.parent) else str(path)
    try:
        loader = _LineLoader(path.read_text(encoding="utf-8"))
        loader.name = name
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        problems.append(Problem(name, mark.line + 1 if mark else 1, f"not valid YAML: {error.problem}"))
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(name, 1, f"cannot be read: {error}"))
    return None


def flatten_texts(mapping: Located, prefix: str = "") -> dict[str, tuple[str, int]]:
    """Nested text keys become dotted keys, each with its line: {"menu.report": ("…", 12)}."""
    flat: dict[str, tuple[str, int]] = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Located):
            flat.update(flatten_texts(value, dotted + "."))
        else:
            flat[dotted] = ("" if value is None else str(value).strip(), mapping.key_lines[key])
    return flat
