"""At most ten screenshots a report (README, Security): an eleventh picture gets a kind answer and is not
kept; an album counts picture by picture, and is answered once."""
from __future__ import annotations

from dialogs.model import MAX_SCREENSHOTS
from tests.support import OPERATOR, Child, bot_settings, report, running_bot, settled


async def test_pictures_past_ten_get_a_kind_answer_and_are_not_kept(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, 1301)
        too_many = app.engine.say("en", "screenshots.too_many", count=MAX_SCREENSHOTS)

        async def screenshots() -> None:
            for _ in range(7):
                await child.send_photo()
            for _ in range(6):  # one album: pictures 8 to 10 are kept, 11 to 13 are not
                tg.user_sends_photo(child.user_id, media_group_id="album-1")
            await settled(app, tg)
            assert child.texts().count(too_many) == 1
            await child.send_photo()  # one more, alone
            assert child.texts().count(too_many) == 2 and child.texts()[-1] == too_many

        await report(child, before_summary=screenshots)
        number = tg.topics(OPERATOR)[-1].name.split(" · ")[0]
        async with app.db.transaction() as tx:
            case = await tx.cases.by_number(number)
        assert len(case.answers["media"]) == MAX_SCREENSHOTS
