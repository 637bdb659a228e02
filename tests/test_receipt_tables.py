"""The receipt side tables keep nothing past its purpose: wrong codes a day, a case's further chats
until the case is purged or the chat erased."""
from __future__ import annotations

from datetime import timedelta

from storage import Database
from tests import test_storage as shared
from tests.test_storage import FakeClock, new_case

# pytest finds fixtures by name in the module: borrow the shared ones.
clock, database_url, db, privacy = shared.clock, shared.database_url, shared.db, shared.privacy


async def test_wrong_codes_count_per_sender_and_overall_and_go_after_a_day(db: Database, clock: FakeClock):
    async with db.transaction() as tx:
        for sender in ("a", "a", "b"):
            await tx.receipt_failures.add(sender)
    clock.advance(hours=25)
    async with db.transaction() as tx:
        await tx.receipt_failures.add("a")
        since = tx.now - timedelta(hours=24)
        assert await tx.receipt_failures.count(since, "a") == 1
        assert await tx.receipt_failures.count(tx.now - timedelta(hours=48)) == 4
        assert await tx.receipt_failures.forget_before(since) == 3
        assert await tx.receipt_failures.count(tx.now - timedelta(hours=48)) == 1


async def test_a_cases_further_chats_go_with_the_chat_or_the_purged_case(db: Database):
    first, second = await new_case(db, "820001", conversation_key="k0"), await new_case(db, "820002")
    async with db.transaction() as tx:
        assert await tx.case_chats.add(first, "k1", "telegram")
        assert not await tx.case_chats.add(first, "k1", "telegram")  # once per chat
        assert await tx.case_chats.add(first, "k2", "viber") and await tx.case_chats.add(second, "k1", "telegram")
        assert [news.case.id for news in await tx.cases.open_with_news("k1")] == [first, second]
        assert await tx.case_chats.delete_for_conversation("k1") == [first, second]
        assert [row.conversation_key for row in await tx.case_chats.for_case(first)] == ["k2"]
        assert await tx.cases.delete(first)
        assert await tx.case_chats.for_case(first) == []
