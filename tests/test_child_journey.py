"""A child reports in Telegram from /start to a case number, through the real dispatcher and real HTTP."""
from __future__ import annotations


from tests.fakes.telegram_api import FakeTelegram
from tests.support import OPERATOR, Child, bot_settings, report, running_bot, settled


async def test_a_child_reports_from_start_to_a_stored_case(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, 501)
        welcome = await child.send("/start")
        assert child.texts()[0] == app.engine.say("en", "welcome.text")
        assert FakeTelegram.inline_buttons(welcome)  # the menu
        confirmation = await report(child)
        assert "{case_number}" not in confirmation.text and "{receipt_code}" not in confirmation.text
        async with app.db.transaction() as tx:
            case = await tx.cases.open_for(app.conversations.privacy.pseudonym("telegram", 501))
        assert case is not None and case.number in confirmation.text
        assert case.category == "bullying" and case.consent == "counsellor" and case.reply_wanted
        assert case.answers["what"] == "They post mean comments under my photos every day."
        await settled(app, tg)
        topics = tg.topics(OPERATOR)
        assert len(topics) == 1 and case.number in topics[0].name


async def test_nothing_leaves_the_bot_before_consent(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, 502)
        await child.send("/start")
        await child.press("menu.report")
        await child.press("category.hate")
        await child.send("Someone threatens me in a group chat")
        assert tg.messages_in(OPERATOR) == [] and tg.topics(OPERATOR) == []


async def test_a_restart_in_the_middle_resumes_the_dialog(tmp_path, tg):
    settings = bot_settings(tmp_path, tg)
    async with running_bot(settings) as app:
        child = Child(app, tg, 503)
        await child.send("/start")
        await child.press("menu.report")
        await child.press("category.scam")
        await child.send("Someone stole my game account")
    async with running_bot(settings) as app:
        child.app = app
        await child.press("platform.discord")  # the button on the message sent before the restart
        assert child.last.text == app.engine.say("en", "report.when")
