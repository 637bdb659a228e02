"""Issue 18, item 5: a stored update that is finally given up (parked) is never lost in silence: the
child is asked kindly to send it again, and staff see a line in the case's topic."""
from __future__ import annotations

from typing import Any

from storage import InboxStatus, Transaction
from tests.support import OPERATOR, Child, bot_settings, report, running_bot

CHILD = 1811
LOST = 99001  # the update id of the update that fails every time


async def test_a_parked_update_of_a_child_with_a_case_is_told_to_the_child_and_to_staff(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg, inbox_max_attempts=1)) as app:
        child = Child(app, tg, CHILD)
        await report(child)
        topic = tg.topics(OPERATOR)[-1].thread_id
        handle = app.inbox.handlers["telegram"]

        async def failing(tx: Transaction, update: dict[str, Any]) -> None:  # a bug that hits this update only
            if update.get("update_id") == LOST:
                raise RuntimeError("a bug while handling")
            await handle(tx, update)

        app.inbox.handlers["telegram"] = failing
        update = {"update_id": LOST, "message": {
            "message_id": 5000, "date": 0, "chat": {"id": CHILD, "type": "private"},
            "from": {"id": CHILD, "is_bot": False, "first_name": "Marta"}, "text": "and one more thing"}}
        async with app.db.transaction() as tx:
            lost = await tx.inbox.add("telegram", str(LOST), app.conversations.privacy.inbox_lane("telegram", CHILD), update)
        app.inbox.wake.set()

        to_child, to_staff = app.engine.say("en", "notice.update_lost"), app.engine.say("en", "operator.notice.update_lost")
        await tg.wait_for(lambda t: any(m.text == to_child for m in t.sent_to(CHILD)), 15, "the child told")
        await tg.wait_for(lambda t: any(m.text == to_staff for m in t.messages_in(OPERATOR, topic)), 15, "staff told")
        async with app.db.transaction() as tx:
            assert (await tx.inbox.get(lost)).status == InboxStatus.PARKED
        assert not any("one more thing" in (m.text or "") for m in tg.sent_to(OPERATOR))  # its content is not repeated
