"""Each case reaches its own region's chat; other regions, "another place" and "rather not say" go to
the default chat; staff in every configured chat are heard, each chat's topics apart (against the fake
Bot API with several forum groups)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from app.build import build
from bot.channel import StartupError
from bot.settings import SettingsError
from storage import ChannelName
from tests.fakes.telegram_api import FakeTelegram
from tests.support import (
    ADMIN, OPERATOR, POLICE, Child, Staff, bot_settings, card_of, grant, running_bot, settled,
)

KYIV = -1001000000011
LVIV = -1001000000012
CHATS = f"kyiv={KYIV},lviv={LVIV}"


async def press_label(child: Child, label: str) -> None:
    message = next(m for m in reversed(child.inbox) if label in [text for text, _ in FakeTelegram.inline_buttons(m)])
    child.tg.user_presses_button(child.user_id, message, text=label)
    await settled(child.app, child.tg)


async def until(tg: FakeTelegram, check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for what `check` looks for (where the bot cannot settle: a card that waits)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "never happened"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tg._changed.wait(), 0.05)


async def report_from(child: Child, where: str | None, what: str = "They post mean comments under my photos.",
                      last: str = "reply.yes", consent: str = "consent.counsellor") -> None:
    """A report; `where`: the region's button label, or a text key (elsewhere / unsaid); `last`: the
    last button pressed and settled (the caller presses the rest)."""
    await child.send("/start")
    await child.press("menu.report")
    if where is not None:
        await press_label(child, where if where[0].isupper() else child.label(where))
    await child.press("category.bullying")
    await child.send(what)
    for key in ("platform.instagram", "when.week", "answer.yes", "who.known", "who.peer", "age.middle",
                "screenshots.done", "summary.correct", consent, "reply.yes"):
        await child.press(key)
        if key == last:
            return


def cards_in(tg: FakeTelegram, chat: int) -> list[str]:
    return [next(m.text for m in tg.messages_in(chat, topic.thread_id) if m.from_bot) for topic in tg.topics(chat)]


@pytest.fixture
async def regional(tmp_path, tg):
    for chat, title in ((KYIV, "Kyiv operators"), (LVIV, "Lviv operators")):
        tg.add_group(chat, title, is_forum=True)
        tg.add_member(chat, ADMIN, "administrator")
    async with running_bot(bot_settings(tmp_path, tg, operator_chats=CHATS)) as app:
        yield app


async def test_each_card_goes_to_its_regions_chat_and_the_rest_to_the_default(regional, tg):
    app = regional
    await report_from(Child(app, tg, 611), "Kyiv", "Kyiv: they post mean comments")
    await report_from(Child(app, tg, 612), "Lviv", "Lviv: they post mean comments")
    await report_from(Child(app, tg, 613), "Vinnytsia", "Vinnytsia: they post mean comments")  # no chat of its own
    await report_from(Child(app, tg, 614), "region.unsaid", "Unsaid: they post mean comments")
    await report_from(Child(app, tg, 615), "region.elsewhere", "Elsewhere: they post mean comments")
    kyiv, lviv, default = cards_in(tg, KYIV), cards_in(tg, LVIV), cards_in(tg, OPERATOR)
    assert len(kyiv) == 1 and "Kyiv: they post" in kyiv[0] and "Region: Kyiv" in kyiv[0]
    assert len(lviv) == 1 and "Lviv: they post" in lviv[0]
    assert len(default) == 3
    assert {"Vinnytsia:", "Unsaid:", "Elsewhere:"} == {word for card in default for word in
                                                       ("Vinnytsia:", "Unsaid:", "Elsewhere:") if word in card}
    assert "Region: Vinnytsia" in " ".join(default) and "Region: not said" in " ".join(default)
    async with app.db.transaction() as tx:
        regions = sorted(str(case.region) for case in await tx.cases.unaccepted(tx.now, False, 9))
    assert regions == ["None", "None", "kyiv", "lviv", "vinnytsia"]


async def test_a_child_who_would_rather_not_say_is_not_asked_again(regional, tg):
    child = Child(regional, tg, 621)
    await report_from(child, "region.unsaid")
    await child.send("/start")
    await child.press("menu.report")
    await child.press("report.new_case")  # the first report is still open
    assert child.label("region.question") not in child.texts()[-1]
    assert child.label("report.category") in child.texts()[-1]


async def test_staff_in_a_regions_chat_answer_their_own_case_though_topic_numbers_repeat(regional, tg):
    app = regional
    default_child, kyiv_child = Child(app, tg, 631), Child(app, tg, 632)
    await report_from(default_child, "region.unsaid")
    await report_from(kyiv_child, "Kyiv")
    assert tg.topics(KYIV)[0].thread_id == tg.topics(OPERATOR)[0].thread_id  # each forum numbers its own
    admin = Staff(app, tg, ADMIN, "Ada", chat=KYIV)  # /grant works in a region's chat too
    counsellor = Staff(app, tg, 800013, "Oksana", chat=KYIV)
    await grant(admin, counsellor, "counsellor")
    card = card_of(tg, KYIV)
    await counsellor.press(card, "operator.button.take")
    assert "Oksana" in tg.message(KYIV, card.message_id).text
    await counsellor.write("Hello, I'm here. Are you safe?", thread_id=tg.topics(KYIV)[0].thread_id)
    assert kyiv_child.texts()[-1].endswith("Are you safe?")
    assert not any("Are you safe?" in text for text in default_child.texts())
    await kyiv_child.send("Yes, at home")
    assert any("Yes, at home" in (m.text or "") for m in tg.messages_in(KYIV, tg.topics(KYIV)[0].thread_id))


async def test_without_regional_chats_nobody_is_asked_and_everything_goes_to_the_default(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, 641)
        await child.send("/start")
        await child.press("menu.report")
        assert child.label("region.question") not in child.texts()[-1]


@pytest.mark.parametrize("kyiv_forum, named", [
    (True, f"lviv={LVIV}"),  # the wrong chat's region is named
    (False, f"kyiv={KYIV}"),  # of several wrong chats, checked at once, the first in order
])
async def test_the_start_check_names_the_region_of_a_wrong_chat(tmp_path, tg, kyiv_forum, named):
    tg.add_group(KYIV, "Kyiv operators", is_forum=kyiv_forum)
    tg.add_group(LVIV, "Lviv operators", is_forum=False)  # Topics not turned on
    app = await build(bot_settings(tmp_path, tg, operator_chats=CHATS))
    try:
        with pytest.raises(StartupError, match=f"OPERATOR_CHATS: {named}: .*Topics"):
            await app.channels[ChannelName.TELEGRAM].check()
    finally:
        await app.close()


@pytest.mark.parametrize("value, named", [("kyiv=-1001,odesa=-1002", "'odesa'"), ("kyiv:-1001", "'kyiv:-1001'"),
                                          ("kyiv=-1001,kyiv=-1002", "'kyiv=-1002'")])
def test_an_unknown_region_or_a_malformed_pair_stops_the_start_with_a_sentence_naming_it(tmp_path, tg, value, named):
    with pytest.raises(SettingsError, match=f"OPERATOR_CHATS.*{named}"):
        bot_settings(tmp_path, tg, operator_chats=value)


async def test_statistics_count_cases_by_the_region_the_child_named(regional, tg):
    await report_from(Child(regional, tg, 651), "Kyiv")
    await report_from(Child(regional, tg, 652), "region.unsaid")
    async with regional.db.transaction() as tx:
        counts = await tx.stats.between(tx.now.date(), tx.now.date())
    submitted = sorted(str(c.region) for c in counts if c.event == "case_submitted" for _ in range(c.count))
    begun = sorted(str(c.region) for c in counts if c.event == "report_begun" for _ in range(c.count))
    assert submitted == begun == ["None", "kyiv"]  # "rather not say" counts as not said


async def test_a_regions_chat_that_is_gone_is_named_to_the_admins_and_its_cards_wait(regional, tg):
    tg.add_user(ADMIN, first_name="Ada")
    del tg.chats[LVIV]  # the group was deleted: "Bad Request: chat not found"
    child = Child(regional, tg, 671)
    await report_from(child, "Lviv", last="consent.counsellor")
    tg.user_presses_button(child.user_id, child.last, text=child.label("reply.yes"))  # sent: the card cannot go
    await until(tg, lambda: any("lviv" in (m.text or "") for m in tg.sent_to(ADMIN)))
    told = [m.text for m in tg.sent_to(ADMIN)]
    assert any("operator · lviv" in text and "chat not found" in text for text in told), told
    async with regional.db.transaction() as tx:
        assert len(await tx.outbox.pending_cards()) == 1  # the card waits; nothing is lost


async def test_a_regions_chat_that_moved_is_followed_and_the_admins_get_the_new_setting(regional, tg):
    tg.add_user(ADMIN, first_name="Ada")
    moved_to = -1001000000099
    tg.group_migrated(KYIV, moved_to)
    tg.chats[moved_to].is_forum = True
    await settled(regional, tg)
    told = [m.text for m in tg.sent_to(ADMIN)]
    assert any(f"kyiv={moved_to}" in text for text in told), told
    await report_from(Child(regional, tg, 672), "Kyiv")
    assert len(tg.topics(moved_to)) == 1 and not tg.topics(KYIV)


async def test_a_regions_own_police_chat_gets_its_escalated_cases(tmp_path, tg):
    kyiv_police = -1001000000021
    for chat, title in ((KYIV, "Kyiv operators"), (kyiv_police, "Kyiv police")):
        tg.add_group(chat, title, is_forum=True)
    settings = bot_settings(tmp_path, tg, operator_chats=f"kyiv={KYIV}", police_chats=f"kyiv={kyiv_police}")
    async with running_bot(settings) as app:
        child = Child(app, tg, 691)
        await child.send("/start")
        await child.press("menu.report")
        await press_label(child, "Kyiv")
        await child.press("category.bullying")
        await child.send("Kyiv: a stranger posts mean comments")
        for key in ("platform.instagram", "when.week", "answer.yes", "who.known", "who.peer", "age.middle",
                    "screenshots.done", "summary.correct", "consent.police", "reply.yes"):
            await child.press(key)
        admin = Staff(app, tg, ADMIN, "Ada", chat=KYIV)
        counsellor = Staff(app, tg, 800041, "Oksana", chat=KYIV)
        officer = Staff(app, tg, 800042, "Petro", chat=kyiv_police)
        await grant(admin, counsellor, "counsellor")
        police_admin = Staff(app, tg, ADMIN, "Ada", chat=kyiv_police)
        await grant(police_admin, officer, "police")
        await counsellor.press(card_of(tg, KYIV), "operator.button.take")
        await counsellor.press(card_of(tg, KYIV), "operator.button.escalate")
        assert len(tg.topics(kyiv_police)) == 1 and not tg.topics(POLICE)
        assert "Kyiv: a stranger posts mean comments" in card_of(tg, kyiv_police).text
        await officer.write("We have opened a case.", thread_id=tg.topics(kyiv_police)[0].thread_id)
        assert child.texts()[-1].startswith("👮") and child.texts()[-1].endswith("We have opened a case.")
