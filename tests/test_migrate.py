"""A database already at the newest revision is started without importing alembic (storage/migrate.py):
that rests on the migration files sorting by name in revision order."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from storage.migrate import MIGRATIONS, head_revision, shipped_head, upgrade

ROOT = Path(__file__).resolve().parent.parent


def test_the_migration_files_sort_in_revision_order() -> None:
    before = None
    for path in sorted((MIGRATIONS / "versions").glob("[0-9]*.py")):
        text = path.read_text(encoding="utf-8")
        assert _assigned(text, "down_revision") == before, path.name
        before = _assigned(text, "revision")
    assert shipped_head() == before == head_revision()


def _assigned(text: str, name: str) -> str | None:
    return ast.literal_eval(re.search(rf"^{name}\b[^=]*= (.+)$", text, re.MULTILINE)[1])


async def test_a_database_at_the_newest_revision_starts_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'oberih.db'}"
    await upgrade(url)
    script = ("import asyncio, sys; from storage.migrate import upgrade; asyncio.run(upgrade(sys.argv[1])); "
              "print('alembic' in sys.modules)")
    started = subprocess.run([sys.executable, "-c", script, url], cwd=ROOT, capture_output=True, text=True, check=True)
    assert started.stdout.strip() == "False"
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"  # one that needs migrating still gets it
    started = subprocess.run([sys.executable, "-c", script, fresh], cwd=ROOT, capture_output=True, text=True, check=True)
    assert started.stdout.strip() == "True"
