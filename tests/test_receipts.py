"""Receipt codes (README, Security: receipts): a code of 56 bits a child can read aloud reconnects their
report from another chat; guessing is stopped per sender (across /forget and accounts) and for
everyone; a right code never silently moves a case; the code is stored nowhere."""
from __future__ import annotations

import re

from bot.receipts import DAMM, damm, digits_of, new_code, well_formed
from tests.scan import everything_readable
from tests.support import (
    ADMIN, OPERATOR, Child, Staff, bot_settings, card_of, grant, report, running_bot, settled,
)

CODE = re.compile(r"\d{3}(?: \d{3}){5}")


def receipt_code(confirmation: str) -> str:
    found = CODE.search(confirmation)
    assert found, confirmation
    return found.group(0)


def wrong_but_well_formed(seed: int) -> str:
    """A code that passes the check digit but opens nothing: a real guess."""
    body = f"{seed:017d}"
    return body + str(damm(body))


def topic_texts(tg, thread_id: int) -> list[str]:
    return [m.text or m.caption or "" for m in tg.messages_in(OPERATOR, thread_id)]


def general_texts(tg) -> list[str]:
    return [m.text or "" for m in tg.sent_to(OPERATOR) if m.thread_id is None]


async def enter_code(child: Child, code: str) -> str:
    await child.send("/mycase")
    await child.press("mycase.enter_code")
    await child.send(code)
    return "\n".join(child.texts()[-3:])


# -- the code itself ----------------------------------------------------------------------------------


def test_a_code_is_eighteen_digits_in_groups_of_three_with_at_least_fifty_bits():
    code = new_code()
    assert CODE.fullmatch(code) and well_formed(code.replace(" ", ""))
    assert 17 * 3.32 > 56  # 17 random digits; the 18th is their check digit
    assert len({new_code() for _ in range(1000)}) == 1000


def test_every_single_typo_and_every_swap_of_neighbours_is_caught_by_the_check_digit():
    digits = new_code().replace(" ", "")
    for position in range(len(digits)):
        for other in "0123456789":
            if other != digits[position]:
                assert not well_formed(digits[:position] + other + digits[position + 1:])
        if position + 1 < len(digits) and digits[position] != digits[position + 1]:
            swapped = digits[:position] + digits[position + 1] + digits[position] + digits[position + 2:]
            assert not well_formed(swapped)
    assert all(sorted(row) == list("0123456789") for row in DAMM)


def test_spaces_and_dashes_are_ignored_and_word_codes_are_no_digit_codes():
    assert digits_of(" 482-915 0 12.345\u00a0678 901 ") == "482915012345678901"
    assert digits_of("Sun-Moon-Star") is None


# -- through the bot ------------------------------------------------------------------------------------


async def test_a_right_code_from_another_chat_connects_it_too_and_answers_reach_both(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        admin, counsellor = Staff(app, tg, ADMIN, "Ada"), Staff(app, tg, 800003, "Olena")
        await grant(admin, counsellor, "counsellor")
        first_phone = Child(app, tg, 1101)
        code = receipt_code((await report(first_phone)).text)
        topic = tg.topics(OPERATOR)[-1]
        number = topic.name.split(" · ")[0]
        second_phone = Child(app, tg, 1102)
        await second_phone.send("/mycase")
        assert second_phone.texts()[-1] == app.engine.say("en", "mycase.none")
        said = await enter_code(second_phone, code.replace(" ", "-", 2))  # however the child types it
        assert app.engine.say("en", "receipt.ok", case_number=number) in said
        # The first chat is told at once, with a way to say it wasn't them; staff see the new chat.
        assert first_phone.texts()[-1] == app.engine.say("en", "receipt.opened_elsewhere", case_number=number)
        assert app.engine.say("en", "operator.notice.reconnected", channel="telegram") in topic_texts(tg, topic.thread_id)
        await counsellor.press(card_of(tg), "operator.button.take")
        await counsellor.write("I'm here.", thread_id=topic.thread_id)
        assert first_phone.texts()[-1].endswith("I'm here.") and second_phone.texts()[-1].endswith("I'm here.")
        await second_phone.send("It happened again today")
        assert any("It happened again today" in text for text in topic_texts(tg, topic.thread_id))


async def test_that_wasnt_me_detaches_the_newcomer_and_alerts_staff(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        admin, counsellor = Staff(app, tg, ADMIN, "Ada"), Staff(app, tg, 800003, "Olena")
        await grant(admin, counsellor, "counsellor")
        child = Child(app, tg, 1111)
        code = receipt_code((await report(child)).text)
        topic = tg.topics(OPERATOR)[-1]
        number = topic.name.split(" · ")[0]
        intruder = Child(app, tg, 1112)
        await enter_code(intruder, code)
        await child.press("receipt.not_me")
        assert app.engine.say("en", "receipt.not_me_done", case_number=number) in child.texts()
        assert intruder.texts()[-1] == app.engine.say("en", "receipt.detached", case_number=number)
        alert = app.engine.say("en", "operator.notice.not_me", count=1)
        assert alert in topic_texts(tg, topic.thread_id)
        await counsellor.press(card_of(tg), "operator.button.take")
        await counsellor.write("Only for you.", thread_id=topic.thread_id)
        assert child.texts()[-1].endswith("Only for you.")
        assert not any(text.endswith("Only for you.") for text in intruder.texts())
        await intruder.send("/mycase")
        assert intruder.texts()[-1] == app.engine.say("en", "mycase.none")
        await child.press("receipt.not_me")  # pressed again: nothing more happens
        assert topic_texts(tg, topic.thread_id).count(alert) == 1


async def test_a_code_typed_in_its_own_chat_tells_staff_nothing(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, 1121)
        code = receipt_code((await report(child)).text)
        topic = tg.topics(OPERATOR)[-1]
        number = topic.name.split(" · ")[0]
        before = len(topic_texts(tg, topic.thread_id))
        said = await enter_code(child, code)
        assert app.engine.say("en", "receipt.already_here", case_number=number) in said
        assert len(topic_texts(tg, topic.thread_id)) == before


async def test_guessing_stops_after_five_wrong_codes_and_forget_does_not_reset_it(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        owner = Child(app, tg, 1131)
        code = receipt_code((await report(owner)).text)
        guesser = Child(app, tg, 1132)
        for guess in range(5):
            assert app.engine.say("en", "receipt.bad") in await enter_code(guesser, wrong_but_well_formed(guess))
        # Forgetting everything and starting again does not help: the right code is not even looked up.
        await guesser.send("/forget")
        await guesser.press("forget.yes")
        said = await enter_code(guesser, code)
        assert app.engine.say("en", "receipt.too_many") in said
        assert app.engine.say("en", "receipt.ok", case_number=tg.topics(OPERATOR)[-1].name.split(" · ")[0]) not in said


async def test_a_flood_of_wrong_codes_from_many_accounts_pauses_receipt_entry_for_everyone(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg, receipt_wrong_codes_per_hour=6)) as app:
        owner = Child(app, tg, 1141)
        code = receipt_code((await report(owner)).text)
        for account in range(3):  # two wrong codes each: no account reaches its own limit
            guesser = Child(app, tg, 1142 + account)
            for guess in range(2):
                await enter_code(guesser, wrong_but_well_formed(account * 10 + guess))
        said = await enter_code(Child(app, tg, 1149), code)
        assert app.engine.say("en", "receipt.paused") in said
        assert sum("6" in line and "🔒" in line for line in general_texts(tg)) == 1  # staff told once


async def test_a_typo_caught_by_the_check_digit_is_not_counted(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        owner = Child(app, tg, 1151)
        code = receipt_code((await report(owner)).text)
        digits = code.replace(" ", "")
        typo = digits[:-1] + str((int(digits[-1]) + 1) % 10)
        newcomer = Child(app, tg, 1152)
        for attempt in range(7):
            said = await enter_code(newcomer, typo if attempt % 2 else digits[:17])  # a wrong digit; one missing
            assert app.engine.say("en", "receipt.check_code") in said
        number = tg.topics(OPERATOR)[-1].name.split(" · ")[0]
        assert app.engine.say("en", "receipt.ok", case_number=number) in await enter_code(newcomer, code)


async def test_an_old_word_code_still_opens_its_case(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        owner = Child(app, tg, 1161)
        await report(owner)
        number = tg.topics(OPERATOR)[-1].name.split(" · ")[0]
        async with app.db.transaction() as tx:  # as cases sent before digit codes were stored
            case = await tx.cases.by_number(number)
            await tx.cases.update(case.id, receipt_hash=app.conversations.privacy.secret_hash("tiger-panda-lemon"))
        said = await enter_code(Child(app, tg, 1162), "Tiger Panda lemon")
        assert app.engine.say("en", "receipt.ok", case_number=number) in said


async def test_the_code_is_stored_nowhere_not_even_sealed(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, 1171)
        code = receipt_code((await report(child)).text)
        await settled(app, tg)
        readable = await everything_readable(app, tmp_path)
    digits = code.replace(" ", "")
    for form in (code, digits, code.replace(" ", "-")):
        assert form.encode() not in readable

