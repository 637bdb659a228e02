"""A sealed value opens only in its own table, column and row; earlier tokens still open; keys rotate.

Someone who can write to the database (a stolen backup restored, a rogue administrator) can copy
sealed bytes between rows with plain SQL. These tests do that and check that the value never opens
in its new place, that the repository says so clearly, and that the bot's work goes on.
"""
from __future__ import annotations

import json
import os

import pytest
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import Connection, text

from bot import privacy as sealing
from bot.privacy import Privacy
from storage import Database, Misplaced, OutboxStatus, SealBroken, UnknownKey
from storage.types import place
from tests import test_storage as shared
from tests.test_storage import CASE, SECRET, FakeClock

# pytest finds fixtures by name in the module: borrow the shared ones (SQLite; PostgreSQL in the _postgres module).
clock, database_url, db = shared.clock, shared.database_url, shared.db
HERE = place("conversations", "state", "k1")
KEY = Fernet.generate_key().decode()


@pytest.fixture
def privacy() -> Privacy:
    """The sealer of the shared `db` fixture, with a key these tests know."""
    return Privacy([KEY], "pepper")


def new_key() -> str:
    return Fernet.generate_key().decode()


async def raw(db: Database, sql: str, **values: object) -> list:
    """Plain SQL on the database, as an intruder would run it."""
    def run(connection: Connection) -> list:
        result = connection.execute(text(sql), values)
        return list(result.all()) if result.returns_rows else []
    return await db.run_sync(run)


# -- the sealer --------------------------------------------------------------------------------------


def test_a_value_opens_only_in_the_table_column_and_row_it_was_sealed_for():
    sealer = Privacy([new_key()], "pepper")
    token = sealer.seal({"chat_id": 1}, place("conversations", "address", "key-a"))
    assert sealer.unseal(token, place("conversations", "address", "key-a")) == {"chat_id": 1}
    for elsewhere in (place("conversations", "address", "key-b"), place("conversations", "state", "key-a"),
                      place("outbox", "address", "key-a")):
        with pytest.raises(Misplaced):
            sealer.unseal(token, elsewhere)


def test_old_keys_still_decrypt_after_rotation():
    old, new = new_key(), new_key()
    sealed_before = Privacy([old], "pepper").seal("kept", HERE)
    rotated = Privacy([new, old], "pepper")
    assert rotated.unseal(sealed_before, HERE) == "kept"
    assert Privacy([new], "pepper").unseal(rotated.seal("new", HERE), HERE) == "new"
    with pytest.raises(UnknownKey):
        Privacy([old], "pepper").unseal(rotated.seal("new", HERE), HERE)


def test_values_sealed_by_earlier_versions_still_open_wherever_they_are():
    key = new_key()
    value = {"what": "Максим sends my diary pages", "step": 3}
    plain = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    fernet_token = MultiFernet([Fernet(key.encode())]).encrypt(plain)
    key_id, aead = sealing._aes_key(key)
    header, nonce = sealing.UNBOUND + key_id, os.urandom(sealing.NONCE)
    unbound_token = header + nonce + aead.encrypt(nonce, plain, header)  # version 1: AES-GCM, no place
    sealer = Privacy([new_key(), key], "pepper")
    for token in (fernet_token, unbound_token):
        assert sealer.unseal(token, HERE) == value
    with pytest.raises(UnknownKey):
        Privacy([new_key()], "pepper").unseal(fernet_token, HERE)


def test_a_bound_token_cannot_pass_for_an_unbound_one():
    sealer = Privacy([new_key()], "pepper")
    token = bytearray(sealer.seal("x", HERE))
    token[0:1] = sealing.UNBOUND
    with pytest.raises(Misplaced):
        sealer.unseal(bytes(token), HERE)


def test_new_data_is_aes_gcm_with_a_fresh_nonce_each_time():
    sealer = Privacy([new_key()], "pepper")
    one, two = sealer.seal({"a": "b"}, HERE), sealer.seal({"a": "b"}, HERE)
    assert one.startswith(sealing.VERSION) and not one.startswith(b"g")
    assert one != two and one[5:17] != two[5:17]  # the nonces
    assert sealer.unseal(one, HERE) == sealer.unseal(two, HERE) == {"a": "b"}
    assert sealer.unseal(None, HERE) is None


@pytest.mark.parametrize(("where", "error"), [
    ("version", UnknownKey), ("key id", UnknownKey), ("nonce", Misplaced), ("ciphertext", Misplaced),
    ("tag", Misplaced), ("truncated", Misplaced),
])
def test_a_tampered_token_is_refused(where, error):
    sealer = Privacy([new_key()], "pepper")
    token = bytearray(sealer.seal({"a": "b"}, HERE))
    if where == "truncated":
        token = token[:20]
    else:
        index = {"version": 0, "key id": 2, "nonce": 10, "ciphertext": 18, "tag": -1}[where]
        token[index] ^= 0x01
    with pytest.raises(error):
        sealer.unseal(bytes(token), HERE)


def test_a_token_from_an_unknown_key_is_refused():
    token = Privacy([new_key()], "pepper").seal("x", HERE)
    with pytest.raises(UnknownKey):
        Privacy([new_key(), new_key()], "pepper").unseal(token, HERE)


def test_keys_whose_ids_collide_are_all_tried(monkeypatch):
    derive = sealing._aes_key
    monkeypatch.setattr(sealing, "_aes_key", lambda key: (b"same", derive(key)[1]))
    first, second = new_key(), new_key()
    assert Privacy([first, second], "pepper").unseal(Privacy([second], "pepper").seal("x", HERE), HERE) == "x"


# -- sealed values moved between rows and columns with SQL --------------------------------------------


async def test_a_chat_address_moved_to_another_child_is_never_used(db: Database, caplog):
    async with db.transaction() as tx:
        await tx.conversations.save("child-a", "telegram", {"lang": "en"}, {"chat_id": 111})
        await tx.conversations.save("child-b", "telegram", {"lang": "en"}, {"chat_id": 222})
        await tx.outbox.add("child", "telegram", "c:child-b", "say", {"text": "hi"}, conversation_key="child-b")
    await raw(db, "UPDATE conversations SET address = (SELECT address FROM conversations WHERE key = 'child-a') "
                  "WHERE key = 'child-b'")
    async with db.transaction() as tx:
        assert (await tx.conversations.get("child-a")).address == {"chat_id": 111}
        moved = await tx.conversations.get("child-b")
        assert moved.address is None and moved.state == {"lang": "en"}  # the child's next message brings it again
        ready = await tx.outbox.ready(tx.now, 10)
    assert [item.address for item in ready] == [None]  # the reply fails as "recipient gone", never reaches 111
    assert "sealed value refused" in caplog.text and "111" not in caplog.text


async def test_a_state_moved_to_another_row_or_column_raises_a_storage_error(db: Database):
    async with db.transaction() as tx:
        await tx.conversations.save("child-a", "telegram", {"lang": "en", "answers": {"what": SECRET}}, None)
        await tx.conversations.save("child-b", "telegram", {"lang": "en"}, {"chat_id": 222})
    await raw(db, "UPDATE conversations SET state = (SELECT state FROM conversations WHERE key = 'child-a') "
                  "WHERE key = 'child-b'")
    await raw(db, "UPDATE conversations SET address = state WHERE key = 'child-a'")
    async with db.transaction() as tx:
        with pytest.raises(Misplaced) as refused:
            await tx.conversations.get("child-b")
        assert isinstance(refused.value, SealBroken) and SECRET not in str(refused.value)
        assert (await tx.conversations.get("child-a")).address is None  # a state is no address either
        stale = await tx.conversations.stale(tx.now.replace(year=tx.now.year + 1), 10)
    assert [conversation.key for conversation in stale] == ["child-a"]  # the sweep goes on past child-b


async def test_answers_moved_to_another_case_show_as_none(db: Database):
    async with db.transaction() as tx:
        first = await tx.cases.create(number="700001", answers={"what": SECRET}, **CASE)
        second = await tx.cases.create(number="700002", answers={"what": "other"}, **CASE)
    await raw(db, f"UPDATE cases SET answers = (SELECT answers FROM cases WHERE id = {first.id}) WHERE id = {second.id}")
    async with db.transaction() as tx:
        assert (await tx.cases.get(first.id)).answers == {"what": SECRET}
        assert (await tx.cases.by_number("700002")).answers == {}
        assert (await tx.cases.update(second.id, urgent=True)).urgent  # the case can still be worked on


async def test_a_cases_answers_follow_its_number(db: Database):
    async with db.transaction() as tx:
        case = await tx.cases.create(number="700003", answers={"what": SECRET}, **CASE)
        assert (await tx.cases.update(case.id, number="700004")).answers == {"what": SECRET}
        assert (await tx.cases.update(case.id, answers={"what": "more"})).answers == {"what": "more"}
    async with db.transaction() as tx:
        assert (await tx.cases.get(case.id)).answers == {"what": "more"}


async def test_a_message_moved_to_another_child_is_never_sent_and_its_lane_goes_on(db: Database, caplog):
    async with db.transaction() as tx:
        for key in ("child-a", "child-b"):
            await tx.conversations.save(key, "telegram", {"lang": "en"}, {"chat_id": key})
        meant_for_a = await tx.outbox.add("child", "telegram", "c:child-a", "say", {"text": SECRET},
                                          conversation_key="child-a")
        for_b = await tx.outbox.add("child", "telegram", "c:child-b", "say", {"text": "hello"},
                                    conversation_key="child-b")
        after_b = await tx.outbox.add("child", "telegram", "c:child-b", "say", {"text": "again"},
                                      conversation_key="child-b")
    await raw(db, f"UPDATE outbox SET payload = (SELECT payload FROM outbox WHERE id = {meant_for_a}) WHERE id = {for_b}")
    async with db.transaction() as tx:
        assert [item.id for item in await tx.outbox.ready(tx.now, 10)] == [meant_for_a]
    async with db.transaction() as tx:
        assert {item.id for item in await tx.outbox.ready(tx.now, 10)} == {meant_for_a, after_b}
        with pytest.raises(Misplaced):
            await tx.outbox.get(for_b)
    assert await raw(db, f"SELECT status, error FROM outbox WHERE id = {for_b}") == [(OutboxStatus.FAILED.value, "Misplaced")]
    assert "sealed value refused" in caplog.text


async def test_an_update_moved_to_another_row_is_parked_and_its_lane_goes_on(db: Database):
    async with db.transaction() as tx:
        first = await tx.inbox.add("telegram", "1", "tg:a", {"message": {"text": SECRET}})
        second = await tx.inbox.add("telegram", "2", "tg:b", {"message": {"text": "hello"}})
        third = await tx.inbox.add("telegram", "3", "tg:b", {"message": {"text": "again"}})
    await raw(db, f"UPDATE inbox SET payload = (SELECT payload FROM inbox WHERE id = {first}) WHERE id = {second}")
    async with db.transaction() as tx:
        assert [item.id for item in await tx.inbox.claim("me", 10, 60)] == [first, third]
    async with db.transaction() as tx:
        assert [item.id for item in await tx.inbox.claim("me", 10, 60)] == [first, third]
        with pytest.raises(Misplaced):
            await tx.inbox.get(second)
    assert await raw(db, f"SELECT status, error FROM inbox WHERE id = {second}") == [("parked", "Misplaced")]


async def test_values_sealed_by_an_earlier_version_still_open_in_the_database(db: Database):
    """Rows written before values were bound to their place are read, and bound when next written."""
    key_id, aead = sealing._aes_key(KEY)
    header, nonce = sealing.UNBOUND + key_id, os.urandom(sealing.NONCE)
    unbound = header + nonce + aead.encrypt(nonce, b'{"lang":"en","step":"what"}', header)
    async with db.transaction() as tx:
        await tx.conversations.save("child-a", "telegram", {"lang": "en"}, None)
    await raw(db, "UPDATE conversations SET state = :unbound WHERE key = 'child-a'", unbound=unbound)
    async with db.transaction() as tx:
        old = await tx.conversations.get("child-a")
        assert old.state == {"lang": "en", "step": "what"}
        await tx.conversations.save("child-a", "telegram", old.state, expected_version=old.version)
    stored = (await raw(db, "SELECT state FROM conversations WHERE key = 'child-a'"))[0][0]
    assert stored.startswith(sealing.VERSION)


async def test_a_missing_key_stops_the_work_and_never_reads_as_absent(db: Database, database_url: str,
                                                                       clock: FakeClock):
    async with db.transaction() as tx:
        await tx.conversations.save("child-a", "telegram", {"lang": "en"}, {"chat_id": 111})
        await tx.cases.create(number="700005", answers={"what": SECRET}, **CASE)
    other = Database(database_url, Privacy([new_key()], "pepper"), clock=clock)  # DATA_KEY lost its old key
    await other.start()
    try:
        async with other.transaction() as tx:
            with pytest.raises(UnknownKey):
                await tx.conversations.get("child-a")
            with pytest.raises(UnknownKey):
                await tx.cases.by_number("700005")
    finally:
        await other.close()
