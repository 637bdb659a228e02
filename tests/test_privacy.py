"""The child stays anonymous and safe: nothing in clear at rest or in logs, erasure, quick exit, no abuse images."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import aiohttp

from bot.logs import JsonFormatter
from tests.support import (
    ADMIN, OPERATOR, Child, Staff, bot_settings, card_of, grant, report, running_bot, settled,
)

CHILD_ID = 987654321
WEBHOOK_SECRET = "s3cret-token-of-at-least-32-chars_0123"
STORY = "Maksym from 7-B sends my diary pages to everyone"


async def journey(app, tg) -> Child:
    """A report with a picture, taken and answered by a counsellor, answered again by the child."""
    admin, counsellor = Staff(app, tg, ADMIN, "Ada"), Staff(app, tg, 800003, "Olena")
    await grant(admin, counsellor, "counsellor")
    child = Child(app, tg, CHILD_ID, first_name="Zlata")
    await child.send("/start")
    await child.press("menu.report")
    await child.press("category.bullying")
    await child.send(STORY)
    for key in ("platform.instagram", "when.week", "answer.yes", "who.known", "who.peer", "age.middle"):
        await child.press(key)
    await child.send_photo(caption="the group chat")
    for key in ("screenshots.done", "summary.correct", "consent.counsellor", "reply.yes"):
        await child.press(key)
    await counsellor.press(card_of(tg), "operator.button.take")
    await counsellor.write("Thank you for telling us, Zlata is safe with us", thread_id=tg.topics(OPERATOR)[-1].thread_id)
    await child.send("Secret follow-up about Maksym")
    return child


def database_bytes(tmp_path: Path) -> bytes:
    return b"".join(path.read_bytes() for path in tmp_path.glob("oberih.db*"))


async def test_nothing_the_child_typed_or_their_id_is_stored_or_logged_in_clear(tmp_path, tg, caplog):
    caplog.set_level(logging.DEBUG)
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = await journey(app, tg)
        assert len(tg.topics(OPERATOR)) == 1
    stored = database_bytes(tmp_path)
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(record) + record.getMessage() for record in caplog.records)
    for secret in (STORY, "Maksym", "Secret follow-up", "Zlata", str(CHILD_ID), f"kid{CHILD_ID}", "the group chat"):
        assert secret.encode() not in stored, f"{secret!r} is in the database file"
        assert secret not in logged, f"{secret!r} is in the logs"
    assert child.inbox


async def test_staff_never_see_the_childs_identity_and_cannot_forward_it(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        await journey(app, tg)
    staff_messages = [m for m in tg.messages_in(OPERATOR) if m.from_bot]
    seen = json.dumps([m.data for m in staff_messages] + [c.params for c in tg.calls
                                                          if c.params.get("chat_id") == OPERATOR], ensure_ascii=False)
    for secret in (str(CHILD_ID), "Zlata", f"kid{CHILD_ID}"):
        assert secret not in seen
    case_messages = [m for m in staff_messages if m.thread_id is not None]
    assert case_messages and all(m.params.get("protect_content") for m in case_messages)
    assert not tg.calls_of("forwardMessage")


async def test_forget_unlinks_the_child_and_tells_the_topic(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = await journey(app, tg)
        await child.send("/forget")
        await child.press("forget.yes")
        assert child.texts()[-1] == app.engine.say("en", "forget.done")
        key = app.conversations.privacy.pseudonym("telegram", CHILD_ID)
        async with app.db.transaction() as tx:
            assert await tx.conversations.get(key) is None
            assert await tx.cases.open_for(key) is None
            assert await tx.chat_messages.for_conversation(key) == []
            case = (await tx.cases.count_by_status())
        assert case == {"assigned": 1}  # the anonymous report stays with the counsellor
        async with app.db.transaction() as tx:
            (only,) = [c for c in await tx.cases.in_progress()]
            assert await tx.case_messages.for_case(only.id) == []  # no link between the child's and staff's messages
        topic = tg.topics(OPERATOR)[-1].thread_id
        assert tg.messages_in(OPERATOR, topic)[-1].text == app.engine.say("en", "operator.notice.forgotten")
        counsellor = Staff.__new__(Staff)
        counsellor.__dict__.update(app=app, tg=tg, user_id=800003, name="Olena", chat=OPERATOR)
        before = len(child.inbox)
        await counsellor.write("Are you still there?", thread_id=topic)
        assert len(child.inbox) == before


async def test_forget_wipes_what_waited_unprocessed_and_staff_learn_it(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = await journey(app, tg)
        lane = app.conversations.privacy.inbox_lane("telegram", CHILD_ID)
        async with app.db.transaction() as tx:  # an update of the child's that failed every time (parked)
            parked = await tx.inbox.add("telegram", "77001", lane, {"message": {"text": "Zlata's secret"}})
            assert await tx.inbox.fail(parked, "KeyError", max_attempts=1)
        await child.send("/forget")
        await child.press("forget.yes")
        async with app.db.transaction() as tx:
            assert (await tx.inbox.get(parked)).payload is None
        topic = tg.topics(OPERATOR)[-1].thread_id
        assert tg.messages_in(OPERATOR, topic)[-1].text == app.engine.say("en", "operator.notice.forgotten_unread")


async def test_quick_exit_clears_the_chat_and_leaves_a_neutral_message(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, CHILD_ID)
        await child.send("/start")
        await child.press("menu.report")
        await child.press("category.grooming")
        await child.send("A man in a game asks me to keep secrets")
        shown = {m.message_id for m in tg.messages_in(CHILD_ID)}
        await child.send("/exit")
        deleted = {mid for call in tg.calls_of("deleteMessages") for mid in call.params["message_ids"]}
        assert shown <= deleted  # the bot's messages and the child's own
        remaining = tg.messages_in(CHILD_ID)
        assert [m.text for m in remaining] == [app.engine.say("en", "exit.neutral")]


async def test_an_intimate_image_is_deleted_and_never_copied_anywhere(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, CHILD_ID)
        await child.send("/start")
        await child.press("menu.report")
        await child.press("category.sextortion")
        await child.send("Someone says he will post my photos")
        photo = tg.user_sends_photo(CHILD_ID)
        await settled(app, tg)
        file_id = photo.data["photo"][-1]["file_id"]
        assert photo.message_id in {m for c in tg.calls_of("deleteMessages") for m in c.params["message_ids"]}
        assert child.texts()[-1] == app.engine.say("en", "images.not_here")
        await child.press("platform.instagram")
        for key in ("when.week", "answer.yes", "who.stranger", "who.adult", "age.older", "common.continue",
                    "summary.correct", "consent.counsellor", "reply.yes"):
            await child.press(key)
        assert len(tg.topics(OPERATOR)) == 1
    everything = json.dumps([c.params for c in tg.calls if c.method != "getUpdates"], ensure_ascii=False)
    assert file_id not in everything.replace(json.dumps(photo.data), "")
    assert file_id.encode() not in database_bytes(tmp_path)


async def test_the_bot_leaves_groups_it_was_not_configured_for(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)):
        tg.bot_added_to_group(-1009999, "Random group", by_user_id=CHILD_ID)
        await tg.wait_for(lambda t: t.calls_of("leaveChat"))
        assert tg.calls_of("leaveChat")[0].params["chat_id"] == -1009999


async def test_a_daily_cap_refuses_extra_reports_without_losing_the_draft(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg, daily_report_cap=1)) as app:
        child = Child(app, tg, CHILD_ID)
        await report(child)
        await child.send("/report")
        await child.press("report.new_case")
        await child.press("category.scam")
        await child.send("Second story")
        for key in ("platform.discord", "when.today", "answer.no", "who.stranger", "who.adult", "age.older",
                    "screenshots.done", "summary.correct", "consent.counsellor"):
            await child.press(key)
        await child.press("reply.yes")
        assert child.texts()[-2:] == [app.engine.say("en", "common.daily_cap"), app.engine.say("en", "menu.text")]
        assert len(tg.topics(OPERATOR)) == 1
        key = app.conversations.privacy.pseudonym("telegram", CHILD_ID)
        async with app.db.transaction() as tx:
            assert (await tx.conversations.get(key)).state["answers"]["what"] == "Second story"


async def test_a_flood_is_throttled_kindly_and_nothing_is_lost(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg, child_messages_per_minute=3)) as app:
        child = Child(app, tg, CHILD_ID)
        await report(child)
        for n in range(8):
            tg.user_sends_text(CHILD_ID, f"flood message {n}")
        await settled(app, tg)
        topic = tg.topics(OPERATOR)[-1].thread_id
        relayed = [m.text for m in tg.messages_in(OPERATOR, topic) if "flood message" in (m.text or "")]
        assert len(relayed) == 8
        assert app.engine.say("en", "common.slow_down") in child.texts()


async def test_telegram_webhooks_need_the_secret_token(tmp_path, tg):
    settings = bot_settings(tmp_path, tg, telegram_webhook_url="https://bot.example.org/tg/hook",
                            telegram_webhook_secret=WEBHOOK_SECRET)
    tg.add_user(CHILD_ID)
    async with running_bot(settings) as app:
        await tg.wait_for(lambda t: t.webhook)  # set once the web server is up, after start-up returns
        assert tg.webhook["url"] == "https://bot.example.org/tg/hook"
        host, port = app.runner.addresses[0][:2]
        update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/start",
                                              "chat": {"id": CHILD_ID, "type": "private"},
                                              "from": {"id": CHILD_ID, "is_bot": False, "first_name": "Z"}}}
        async with aiohttp.ClientSession() as http:
            url = f"http://{host}:{port}/tg/hook"
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(url, json=update, headers=headers) as response:
                    assert response.status == 401
            async with app.db.transaction() as tx:
                assert await tx.inbox.last_external_id("telegram") is None
            async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}) as response:
                assert response.status == 200
            await tg.wait_for(lambda t: t.sent_to(CHILD_ID))
            async with http.get(f"http://{host}:{port}/healthz") as response:
                assert response.status == 200 and (await response.json())["database"] is True
            async with http.get(f"http://{host}:{port}/metrics") as response:
                metrics = await response.text()
            assert "oberih_updates_handled_total" in metrics and str(CHILD_ID) not in metrics
            async with http.get(f"http://{host}:{port}/admin") as response:
                assert response.status == 404
