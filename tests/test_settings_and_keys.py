"""Settings stop the program with a sentence naming the setting; keys are generated safely and rotate."""
from __future__ import annotations

import io
import json
import stat

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot import privacy
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
    with pytest.raises(InvalidToken):
        Privacy([old], "pepper").unseal(rotated.seal("new"))


def test_data_sealed_with_fernet_by_earlier_versions_is_still_read():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    value = {"what": "Максим sends my diary pages", "step": 3}
    fernet_token = MultiFernet([Fernet(old.encode())]).encrypt(
        json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    assert Privacy([old], "pepper").unseal(fernet_token) == value
    assert Privacy([new, old], "pepper").unseal(fernet_token) == value
    with pytest.raises(InvalidToken):
        Privacy([new], "pepper").unseal(fernet_token)


def test_new_data_is_aes_gcm_with_a_fresh_nonce_each_time():
    sealer = Privacy([Fernet.generate_key().decode()], "pepper")
    one, two = sealer.seal({"a": "b"}), sealer.seal({"a": "b"})
    assert one.startswith(privacy.VERSION) and not one.startswith(b"g")
    assert one != two and one[5:17] != two[5:17]  # the nonces
    assert sealer.unseal(one) == sealer.unseal(two) == {"a": "b"}
    assert sealer.unseal(None) is None


@pytest.mark.parametrize("where", ["version", "key id", "nonce", "ciphertext", "tag", "truncated"])
def test_a_tampered_token_is_refused(where):
    sealer = Privacy([Fernet.generate_key().decode()], "pepper")
    token = bytearray(sealer.seal({"a": "b"}))
    if where == "truncated":
        token = token[:20]
    else:
        index = {"version": 0, "key id": 2, "nonce": 10, "ciphertext": 18, "tag": -1}[where]
        token[index] ^= 0x01
    with pytest.raises(InvalidToken):
        sealer.unseal(bytes(token))


def test_a_token_from_an_unknown_key_is_refused():
    token = Privacy([Fernet.generate_key().decode()], "pepper").seal("x")
    with pytest.raises(InvalidToken):
        Privacy([Fernet.generate_key().decode(), Fernet.generate_key().decode()], "pepper").unseal(token)


def test_keys_whose_ids_collide_are_all_tried(monkeypatch):
    derive = privacy._aes_key
    monkeypatch.setattr(privacy, "_aes_key", lambda key: (b"same", derive(key)[1]))
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert Privacy([first, second], "pepper").unseal(Privacy([second], "pepper").seal("x")) == "x"


def test_pseudonyms_depend_on_the_pepper_and_the_channel():
    key = Fernet.generate_key().decode()
    one, two = Privacy([key], "pepper-1"), Privacy([key], "pepper-2")
    assert one.pseudonym("telegram", 5) != two.pseudonym("telegram", 5)
    assert one.pseudonym("telegram", 5) != one.pseudonym("viber", 5)
    assert len(one.pseudonym("telegram", 5)) == 64


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
