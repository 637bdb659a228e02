"""SQLite's log is checkpointed by a thread of the Database's own, never inside a commit on the loop."""
from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from cryptography.fernet import Fernet

from bot.privacy import Privacy
from storage import Database


async def test_checkpoints_run_beside_the_commits_and_stop_with_the_database(tmp_path: Path) -> None:
    path = tmp_path / "oberih.db"
    db = Database(f"sqlite:///{path}", Privacy([Fernet.generate_key().decode()], "pepper"))
    await db.start()
    checkpoints = db._checkpoints
    assert checkpoints is not None
    autocheckpoint = await db.run_sync(lambda connection: connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())
    assert autocheckpoint == 0  # not inside a commit
    for round_ in range(3):
        checkpoints.passed.clear()
        for n in range(50):
            async with db.transaction() as tx:
                await tx.conversations.save(f"child-{round_}-{n}", "telegram", {"lang": "uk", "n": n}, {"chat_id": n})
        assert await asyncio.to_thread(checkpoints.passed.wait, 30)  # one ran meanwhile
    await db.close()
    assert not checkpoints._thread.is_alive()
    with sqlite3.connect(path) as raw:  # everything committed is there, whatever was checkpointed when
        assert raw.execute("SELECT count(*) FROM conversations").fetchone() == (150,)


async def test_a_database_in_memory_has_no_checkpoints() -> None:
    db = Database("sqlite:///:memory:", Privacy([Fernet.generate_key().decode()], "pepper"))
    await db.start()
    assert db._checkpoints is None
    await db.close()
