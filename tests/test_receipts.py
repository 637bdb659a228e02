"""A receipt code reconnects a child to their case from another phone; guessing codes is stopped."""
from __future__ import annotations

import re

from tests.support import ADMIN, OPERATOR, Child, Staff, bot_settings, card_of, grant, report, running_bot


def receipt_code(confirmation: str) -> str:
    return re.search(r"(\w+-\w+-\w+)", confirmation).group(1)


async def test_a_receipt_code_reconnects_a_child_on_another_phone(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        admin, counsellor = Staff(app, tg, ADMIN, "Ada"), Staff(app, tg, 800003, "Olena")
        await grant(admin, counsellor, "counsellor")
        first_phone = Child(app, tg, 1101)
        code = receipt_code((await report(first_phone)).text)
        second_phone = Child(app, tg, 1102)
        await second_phone.send("/mycase")
        assert second_phone.texts()[-1] == app.engine.say("en", "mycase.none")
        await second_phone.press("mycase.enter_code")
        await second_phone.send(code.upper().replace("-", " "))  # however the child types it
        number = tg.topics(OPERATOR)[-1].name.split(" · ")[0]
        assert app.engine.say("en", "receipt.ok", case_number=number) in second_phone.texts()
        await counsellor.press(card_of(tg), "operator.button.take")
        await counsellor.write("I'm here.", thread_id=tg.topics(OPERATOR)[-1].thread_id)
        assert second_phone.texts()[-1].endswith("I'm here.")


async def test_guessing_receipt_codes_stops_after_a_few_tries(tmp_path, tg):
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, 1103)
        await child.send("/mycase")
        await child.press("mycase.enter_code")
        for guess in range(5):
            await child.send(f"wrong-code-{guess}")
            assert child.texts()[-2] == app.engine.say("en", "receipt.bad")
        await child.send("another-wrong-code")
        assert app.engine.say("en", "receipt.too_many") in child.texts()[-3:]
