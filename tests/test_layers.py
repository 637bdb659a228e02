"""The floors of the house: an import only runs down (docs/ARCHITECTURE.md, "Floors")."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What each floor may not import: the floors above it, and the platform libraries below handlers/.
FORBIDDEN = {
    "dialogs": ("app", "handlers", "bot", "storage", "aiogram", "viberbot", "aiohttp", "sqlalchemy"),
    "storage": ("app", "handlers", "bot", "dialogs", "aiogram", "viberbot"),
    "bot": ("app", "handlers", "aiogram", "viberbot"),
    "handlers": ("app",),
}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("floor", sorted(FORBIDDEN))
def test_no_import_runs_up(floor: str) -> None:
    wrong = []
    for path in sorted((ROOT / floor).rglob("*.py")):
        for name in imports(path):
            if name.split(".")[0] in FORBIDDEN[floor]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)
