"""Settings stop the program with a sentence naming the setting; generated keys live apart from the data."""
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


def test_generated_keys_live_in_an_owner_only_folder_beside_the_data_and_are_stable(tmp_path, caplog):
    local = settings(data_dir=tmp_path / "data")
    keys = local.resolved_keys_dir
    assert keys == tmp_path / "data-keys"
    first = load_privacy(None, None, keys, local.data_dir)
    assert "keep it out of the data's backups" in caplog.text
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for name in ("data.key", "id.pepper"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    assert not local.data_dir.exists() or not any(local.data_dir.iterdir())  # nothing secret beside the data
    again = load_privacy(None, None, keys, local.data_dir)
    assert again.pseudonym("telegram", 42) == first.pseudonym("telegram", 42)
    assert again.unseal(first.seal({"a": "b"}, b"here"), b"here") == {"a": "b"}


def test_keys_an_earlier_version_generated_into_the_data_folder_are_moved_out(tmp_path, caplog):
    data, keys = tmp_path / "data", tmp_path / "data-keys"
    before = load_privacy(None, None, data)  # as earlier versions did: the keys beside the data
    sealed = before.seal({"what": "kept"}, b"here")
    caplog.clear()
    after = load_privacy(None, None, keys, data)
    assert after.unseal(sealed, b"here") == {"what": "kept"}
    assert after.pseudonym("telegram", 7) == before.pseudonym("telegram", 7)
    assert sorted(path.name for path in data.iterdir()) == []
    assert sorted(path.name for path in keys.iterdir()) == ["data.key", "id.pepper"]
    assert all(stat.S_IMODE((keys / name).stat().st_mode) == 0o600 for name in ("data.key", "id.pepper"))
    assert "moved data.key out of DATA_DIR" in caplog.text and "backups of DATA_DIR made until now" in caplog.text


def test_a_key_that_differs_between_the_data_and_the_keys_folder_stops_the_start(tmp_path):
    data, keys = tmp_path / "data", tmp_path / "keys"
    load_privacy(None, None, data)
    load_privacy(None, None, keys)  # another key, made elsewhere
    with pytest.raises(ValueError, match="different values"):
        load_privacy(None, None, keys, data)
    assert (data / "data.key").exists()  # nothing deleted while in doubt


def test_keys_are_never_moved_onto_themselves(tmp_path):
    first = load_privacy(None, None, tmp_path)
    again = load_privacy(None, None, tmp_path, tmp_path)
    assert again.pseudonym("telegram", 1) == first.pseudonym("telegram", 1) and (tmp_path / "data.key").exists()


def test_keys_given_in_settings_write_no_files(tmp_path):
    key = Fernet.generate_key().decode()
    load_privacy(key, "pepper", tmp_path / "keys", tmp_path / "data")
    assert not (tmp_path / "keys").exists()


@pytest.mark.parametrize("keys_dir", [".", "inner"])
def test_a_keys_folder_inside_the_data_folder_is_refused(tmp_path, keys_dir):
    with pytest.raises(SettingsError, match="KEYS_DIR .* must lie outside DATA_DIR"):
        settings(data_dir=tmp_path, keys_dir=tmp_path / keys_dir)


def test_postgresql_needs_both_keys_in_the_settings():
    url = "postgresql+asyncpg://oberih@db.example.org/oberih"
    for given in ({}, {"data_key": Fernet.generate_key().decode()}, {"id_pepper": "pepper"}):
        with pytest.raises(SettingsError) as error:
            settings(database_url=url, **given)
        assert "DATA_KEY and ID_PEPPER are required" in str(error.value)
    assert settings(database_url=url, data_key=Fernet.generate_key().decode(), id_pepper="pepper")


@pytest.mark.parametrize(("secret", "accepted"), [
    ("s3cret-token", False),  # too short to stand guessing
    ("a" * 31, False),
    ("a" * 32, True),
    ("A-z_0-9" * 5, True),
    ("a" * 256, True),
    ("a" * 257, False),  # Telegram takes at most 256
    ("a" * 31 + "!", False),  # Telegram takes only A-Z a-z 0-9 _ -
    ("a" * 31 + " b", False),
])
def test_a_weak_or_malformed_webhook_secret_stops_the_start(secret, accepted):
    values = {"telegram_bot_token": "1:x", "operator_chat_id": -1001, "telegram_webhook_url": "https://x/tg",
              "telegram_webhook_secret": secret}
    if accepted:
        assert settings(**values).telegram_webhook_secret.get_secret_value() == secret
        return
    with pytest.raises(SettingsError) as error:
        settings(**values)
    assert "TELEGRAM_WEBHOOK_SECRET" in str(error.value) and "32-256 characters" in str(error.value)
    assert secret not in str(error.value)


def test_a_short_metrics_token_stops_the_start():
    with pytest.raises(SettingsError, match="METRICS_TOKEN"):
        settings(metrics_token="short")
    assert settings(metrics_token="x" * 32).metrics_token


def test_pseudonyms_depend_on_the_pepper_and_the_channel():
    key = Fernet.generate_key().decode()
    one, two = Privacy([key], "pepper-1"), Privacy([key], "pepper-2")
    assert one.pseudonym("telegram", 5) != two.pseudonym("telegram", 5)
    assert one.pseudonym("telegram", 5) != one.pseudonym("viber", 5)
    assert len(one.pseudonym("telegram", 5)) == 64


def test_an_inbox_lane_is_the_same_from_a_platform_id_as_a_number_or_as_text():
    sealer = Privacy([Fernet.generate_key().decode()], "pepper")
    lane = sealer.inbox_lane("telegram", 42)
    assert lane == sealer.inbox_lane("telegram", "42") and lane.startswith("tg:") and "42" not in lane
    assert sealer.inbox_lane("viber", "abc").startswith("vb:")


async def test_the_console_walks_a_report_without_network(tmp_path):
    from app.build import build
    from handlers.console import ConsoleTransport, run_console

    local = settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'console.db'}", default_language="en")
    out = io.StringIO()
    transport = ConsoleTransport(out)
    app = await build(local, console=transport)
    try:
        await run_console(app.db, app.conversations, app.casework, app.worker, transport, io.StringIO("1\n1\nThey laugh at me\nquit\n"))
    finally:
        await app.close()
    shown = out.getvalue()
    assert "What would you like to do?" in shown and "Where did it happen?" in shown
