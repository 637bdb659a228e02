"""Settings stop the program with a sentence naming the setting; keys are generated safely and rotate."""
from __future__ import annotations

import io
import stat

import pytest
from cryptography.fernet import Fernet

from bot.privacy import Privacy, load_privacy
from bot.settings import SettingsError, load_settings


def settings(**values):
    return load_settings(_env_file=None, **values)


def test_defaults_run_locally_on_sqlite():
    local = settings()
    assert not local.telegram_enabled and local.resolved_database_url.startswith("sqlite:///")
    assert "1:tok3n-value" not in repr(settings(telegram_bot_token="1:tok3n-value", operator_chat_id=-1001))


@pytest.mark.parametrize(("values", "named"), [
    ({"telegram_bot_token": "1:x"}, "OPERATOR_CHAT_ID"),
    ({"viber_auth_token": "v", "viber_webhook_url": "https://x/viber", "operator_chat_id": -1001}, "TELEGRAM_BOT_TOKEN"),
    ({"admin_ids": "12,abc"}, "ADMIN_IDS"),
    ({"web_port": "99999"}, "WEB_PORT"),
    ({"telegram_bot_token": "1:x", "operator_chat_id": -1001, "telegram_webhook_url": "https://x/tg"},
     "TELEGRAM_WEBHOOK_SECRET"),
])
def test_a_bad_setting_is_named(values, named):
    with pytest.raises(SettingsError) as error:
        settings(**values)
    assert named in str(error.value)


def test_generated_keys_are_owner_only_and_stable(tmp_path, caplog):
    first = load_privacy(None, None, tmp_path)
    assert "secret store" in caplog.text
    for name in ("data.key", "id.pepper"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    again = load_privacy(None, None, tmp_path)
    assert again.pseudonym("telegram", 42) == first.pseudonym("telegram", 42)
    assert again.unseal(first.seal({"a": "b"})) == {"a": "b"}


def test_old_keys_still_decrypt_after_rotation():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_before = Privacy([old], "pepper").seal("kept")
    rotated = Privacy([new, old], "pepper")
    assert rotated.unseal(sealed_before) == "kept"
    assert Privacy([new], "pepper").unseal(rotated.seal("new")) == "new"


def test_pseudonyms_depend_on_the_pepper_and_the_channel():
    key = Fernet.generate_key().decode()
    one, two = Privacy([key], "pepper-1"), Privacy([key], "pepper-2")
    assert one.pseudonym("telegram", 5) != two.pseudonym("telegram", 5)
    assert one.pseudonym("telegram", 5) != one.pseudonym("viber", 5)
    assert len(one.pseudonym("telegram", 5)) == 64


async def test_the_console_walks_a_report_without_network(tmp_path):
    from bot.app import build_app
    from handlers.console import run_console

    local = settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'console.db'}",
                     default_language="en", rate_chat_per_second=1000, rate_global_per_second=1000)
    app = await build_app(local, staff_channel="console")
    out = io.StringIO()
    try:
        await run_console(app, io.StringIO("1\n1\nThey laugh at me\nquit\n"), out)
    finally:
        await app.close()
    shown = out.getvalue()
    assert "What would you like to do?" in shown and "Where did it happen?" in shown
