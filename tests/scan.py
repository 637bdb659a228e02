"""Byte scans of everything a bot left in its SQLite database: the files' bytes, and every sealed value opened."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


async def everything_readable(app: Any, data_dir: Path) -> bytes:
    """The database files' bytes, and every sealed value in them opened (outbox payloads, inbox updates,
    conversations, case answers), as one byte string."""
    raw = b"".join(path.read_bytes() for path in data_dir.glob("oberih.db*"))
    with sqlite3.connect(data_dir / "oberih.db") as connection:
        keys = [row[0] for row in connection.execute("SELECT key FROM conversations")]
        inbox = [row[0] for row in connection.execute("SELECT id FROM inbox")]
    opened: list[str] = []
    async with app.db.transaction() as tx:
        opened += [repr(item.payload) for item in await tx.outbox.items()]
        opened += [repr((await tx.inbox.get(item)).payload) for item in inbox]
        opened += [repr(case.answers) for case in await tx.cases.in_progress(limit=10_000)]
        for key in keys:
            conversation = await tx.conversations.get(key)
            opened.append(repr((conversation.state, conversation.address)))
    return raw + "\n".join(opened).encode()
