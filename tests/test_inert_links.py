"""Every link, domain, e-mail address and @handle a child wrote reaches staff inert, previews off."""
from __future__ import annotations

import pytest

from dialogs.inert import inert
from tests.support import OPERATOR, Child, bot_settings, report, running_bot, settled


@pytest.mark.parametrize(("typed", "shown"), [
    ("see https://example.org/page?x=1 now", "see hxxps://example[.]org/page?x=1 now"),
    ("on instagram.com/bad.guy", "on instagram[.]com/bad[.]guy"),
    ("tiktok.com/@someone", "tiktok[.]com/[@]someone"),
    ("write to bad@mail.com", "write to bad[@]mail[.]com"),
    ("@predator123 wrote me", "[@]predator123 wrote me"),
    ("приклад.укр and münchen.de", "приклад[.]укр and münchen[.]de"),
    ("HTTP://EXAMPLE.COM", "HXXP://EXAMPLE[.]COM"),
    ("t.me/joinchat/abc", "t[.]me/joinchat/abc"),
])
def test_links_domains_and_handles_are_defanged(typed: str, shown: str) -> None:
    assert inert(typed) == shown


@pytest.mark.parametrize("plain", ["e.g. this", "I waited...then he came", "3.14 is pi", "Ok.", "the end. Then", "@me"])
def test_ordinary_words_stay_as_they_are(plain: str) -> None:
    assert inert(plain) == plain


async def test_links_in_any_answer_and_in_relayed_messages_are_inert(tmp_path, tg) -> None:
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, 1601)
        await report(child, what="He writes from https://evil.example/chat and as @badguy on insta.gram")
        await child.press("common.to_menu")
        await child.press("menu.report")
        await child.press("report.add_to_case")
        await child.send("Now he is on t.me/predator too")
        await settled(app, tg)
        staff = [m for m in tg.messages_in(OPERATOR) if m.from_bot]
        text = "\n".join(m.text or m.caption or "" for m in staff)
        assert "hxxps://evil[.]example/chat" in text and "[@]badguy" in text and "insta[.]gram" in text
        assert "t[.]me/predator" in text
        assert "https://" not in text and "t.me/" not in text
        sent = [call for call in tg.calls if call.method in ("sendMessage", "editMessageText")
                and call.params.get("chat_id") == OPERATOR]
        assert sent and all((call.params.get("link_preview_options") or {}).get("is_disabled") for call in sent)
