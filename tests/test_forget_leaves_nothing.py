"""After the child's /forget nothing of theirs waits to be sent, and no table holds their words, their
files' ids or their chat id, not even sealed (README, Security: what /forget leaves)."""
from __future__ import annotations

from storage import Database, OutboxStatus
from tests import test_storage as shared
from tests.scan import everything_readable
from tests.support import OPERATOR, Staff, bot_settings, running_bot, settled
from tests.test_privacy import CHILD_ID, journey
from tests.test_storage import new_case

# pytest finds fixtures by name in the module: borrow the shared ones.
clock, database_url, db, privacy = shared.clock, shared.database_url, shared.db, shared.privacy


async def test_after_forget_no_table_holds_the_childs_words_files_or_chat_id(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = await journey(app, tg)  # a report, an answer, and a follow-up relayed to the counsellor
        picture = tg.user_sends_photo(CHILD_ID, caption="look at this")
        await settled(app, tg)
        file_ids = [size["file_id"] for size in picture.data["photo"]]
        counsellor = Staff.__new__(Staff)
        counsellor.__dict__.update(app=app, tg=tg, user_id=800003, name="Olena", chat=OPERATOR)
        await counsellor.write("Send me the link, Zlata", thread_id=tg.topics(OPERATOR)[-1].thread_id)
        await child.send("/forget")
        await child.press("forget.yes")
        readable = await everything_readable(app, tmp_path)
    for secret in ("Secret follow-up about Maksym", "look at this", "Send me the link", "Zlata is safe",
                   str(CHILD_ID), *file_ids):
        assert secret.encode() not in readable, f"{secret!r} outlived /forget"


async def test_forget_cancels_and_wipes_the_childs_waiting_and_sent_items(db: Database):
    mine, other = await new_case(db, "810001", conversation_key="k1"), await new_case(db, "810002")
    async with db.transaction() as tx:
        to_child = await tx.outbox.add("child", "telegram", "child:k1", "staff_text", {"text": "answer"},
                                       conversation_key="k1", case_id=mine)
        relay = {"text": "my words", "media": {"kind": "photo", "file_ref": "FILE-1"}, "child_message_id": 5}
        waiting = await tx.outbox.add("operator", "telegram", f"operator:{mine}", "relay", relay, case_id=mine)
        sent = await tx.outbox.add("operator", "telegram", f"operator:{mine}", "relay", relay, case_id=mine)
        assert await tx.outbox.mark_sent(sent, f"operator:{mine}", {"message_ids": [7]})
        kept = await tx.outbox.add("operator", "telegram", f"operator:{other}", "relay", relay, case_id=other)
        card = await tx.outbox.add("operator", "telegram", f"operator:{mine}", "case_card", {}, case_id=mine)
    async with db.transaction() as tx:
        assert await tx.outbox.forget_child("k1", [mine]) == 2
        items = {item.id: item for item in await tx.outbox.items()}
    assert (items[to_child].status, items[to_child].payload) == (OutboxStatus.CANCELLED, {})
    assert (items[waiting].status, items[waiting].payload) == (OutboxStatus.CANCELLED, {})
    assert (items[sent].status, items[sent].payload) == (OutboxStatus.SENT, {})
    assert items[kept].payload == relay and items[card].status is OutboxStatus.PENDING
