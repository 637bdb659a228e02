"""Pseudonyms and encryption at rest (docs/ARCHITECTURE.md, rule 4): no platform id or child's sentence in clear.

New data is sealed with AES-256-GCM under a key derived (HKDF) from each DATA_KEY Fernet key:
version byte | key id (4) | nonce (12) | ciphertext and tag. The associated data is the header and
the value's place (table, column, row: storage.types.place), so a value opens only where it was
written. Tokens of earlier versions are still read: version 1 (AES-GCM bound to no place) and Fernet
tokens (url-safe base64, always starting with b"g"); they are sealed anew, bound, when next written.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.errors import Misplaced, UnknownKey

log = logging.getLogger(__name__)

KEY_FILE = "data.key"
PEPPER_FILE = "id.pepper"

VERSION = b"\x02"  # bound to its place; never the first byte of a Fernet token
UNBOUND = b"\x01"  # sealed before values were bound to their place
HKDF_INFO = b"oberih seal aes-256-gcm v1"
HEADER, NONCE, TAG = 5, 12, 16  # version + key id; GCM nonce; GCM tag
# One encoder for every seal (json.dumps with options builds a new one per call).
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# How the inbox names a chat's lane (its updates are handled in order, one at a time).
LANE_PREFIX = {"telegram": "tg", "viber": "vb"}


class Privacy:
    """Keyed hashes of platform ids and AES-GCM encryption; old keys and old Fernet tokens still decrypt."""

    def __init__(self, data_keys: list[str], pepper: str) -> None:
        self._fernet = MultiFernet([Fernet(key.encode()) for key in data_keys])  # also validates the keys
        keys = [_aes_key(key) for key in data_keys]
        self._header, self._aead = VERSION + keys[0][0], keys[0][1]  # the first key encrypts
        self._by_id: dict[bytes, list[AESGCM]] = {}
        for key_id, aead in keys:
            self._by_id.setdefault(key_id, []).append(aead)
        self._pepper = pepper.encode()

    def pseudonym(self, channel: str, platform_id: object) -> str:
        """A stable keyed hash of a channel and an id: the only way a child is known to storage."""
        message = f"{channel}:{platform_id}".encode()
        return hmac.new(self._pepper, message, hashlib.sha256).hexdigest()

    def secret_hash(self, text: str) -> str:
        """A keyed hash for a secret the child holds (the receipt words of cases sent before bot/receipts.py)."""
        return hmac.new(self._pepper, b"receipt:" + text.encode(), hashlib.sha256).hexdigest()

    def derived(self, purpose: str) -> bytes:
        """32 bytes derived from the pepper for one purpose (e.g. the receipt codes' salt): unknown without it."""
        return hmac.new(self._pepper, b"derived:" + purpose.encode(), hashlib.sha256).digest()

    def inbox_lane(self, channel: str, chat_id: object) -> str:
        """The inbox lane of a chat: named by a keyed hash only. Adapters file updates under it, and
        /forget wipes what waits there, so both must compute it here."""
        return inbox_lane(channel, chat_id, self.pseudonym)

    def encrypt(self, data: bytes, place: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return self._header + nonce + self._aead.encrypt(nonce, data, self._header + place)

    def decrypt(self, token: bytes, place: bytes) -> bytes:
        """AES-GCM tokens by their key id; anything else is an older Fernet token. UnknownKey if no key
        of DATA_KEY made it; Misplaced if one did, but for another place (or it was altered)."""
        version = token[:1]
        if version not in (VERSION, UNBOUND):
            try:
                return self._fernet.decrypt(token)
            except InvalidToken:
                raise UnknownKey("no DATA_KEY key opens this value") from None
        header, nonce, sealed = token[:HEADER], token[HEADER:HEADER + NONCE], token[HEADER + NONCE:]
        # The key id is authenticated, so only keys with this id can open the token (more than one on a collision).
        aeads = self._by_id.get(header[1:], ())
        if not aeads:
            raise UnknownKey("no DATA_KEY key opens this value")
        associated = header + place if version == VERSION else header
        if len(sealed) >= TAG:
            for aead in aeads:
                try:
                    return aead.decrypt(nonce, sealed, associated)
                except InvalidTag:
                    pass
        raise Misplaced("a sealed value was moved from where it was written, or altered")

    def seal(self, value: Any, place: bytes) -> bytes:
        """Encrypt a JSON-serialisable value, bound to its place (storage.types.place)."""
        return self.encrypt(_to_json(value).encode(), place)

    def unseal(self, token: bytes | None, place: bytes) -> Any:
        """Decrypt what `seal` made for this place; None stays None."""
        if token is None:
            return None
        return json.loads(self.decrypt(token, place))


def inbox_lane(channel: str, chat_id: object, pseudonym: Callable[[str, object], str]) -> str:
    """See Privacy.inbox_lane (for adapters that hold only the pseudonym function)."""
    return f"{LANE_PREFIX.get(channel, channel)}:{pseudonym('lane', chat_id)[:24]}"


def _aes_key(fernet_key: str) -> tuple[bytes, AESGCM]:
    """A key id and an AES-256-GCM key derived from a Fernet key: the same bytes are not used raw by two ciphers."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
    derived = hkdf.derive(base64.urlsafe_b64decode(fernet_key.encode()))
    return hmac.new(derived, b"key id", hashlib.sha256).digest()[:4], AESGCM(derived)


def load_privacy(data_key: str | None, pepper: str | None, keys_dir: Path, data_dir: Path | None = None) -> Privacy:
    """Keys from settings; without them, generated owner-only files in keys_dir (0700), read on every
    later start. Files an earlier version generated into data_dir are moved to keys_dir first."""
    if data_dir is not None and data_dir.resolve() == keys_dir.resolve():
        data_dir = None  # nothing to move (settings refuse this; a direct caller may not)
    keys = [part.strip() for part in (data_key or "").split(",") if part.strip()]
    if not keys:
        keys = [_generated(KEY_FILE, lambda: Fernet.generate_key().decode(), keys_dir, data_dir)]
    if not pepper:
        pepper = _generated(PEPPER_FILE, lambda: secrets.token_urlsafe(32), keys_dir, data_dir)
    for name in (KEY_FILE, PEPPER_FILE):
        if data_dir is not None and (data_dir / name).exists():  # left there: its setting is given
            log.warning("%s lies in DATA_DIR, where the data's backups take it along: delete it once the "
                        "setting holds its value", name)
    try:
        return Privacy(keys, pepper)
    except (ValueError, InvalidToken):
        raise ValueError("DATA_KEY must be one or more comma-separated Fernet keys (32 url-safe base64 bytes)") from None


def _generated(name: str, make: Callable[[], str], keys_dir: Path, data_dir: Path | None) -> str:
    path = keys_dir / name
    if data_dir is not None and (data_dir / name).exists():
        _move_out_of_data(data_dir / name, path)
    if path.exists():
        if path.stat().st_mode & 0o077:
            log.warning("%s can be read by other users of this machine: chmod 600 it", path)
        return path.read_text().strip()
    value = make()
    if not _write_owner_only(path, value):
        return path.read_text().strip()  # another process wrote it first
    log.warning(
        "generated a new secret in %s: keep it out of the data's backups, or move it into a secret store and set "
        "DATA_KEY / ID_PEPPER; losing it makes stored reports unreadable", path,
    )
    return value


def _move_out_of_data(old: Path, new: Path) -> None:
    """Earlier versions generated keys beside the data, where its backups took them along."""
    value = old.read_text().strip()
    if new.exists() and new.read_text().strip() != value:
        raise ValueError(
            f"{old.name} is in DATA_DIR ({old}) and in KEYS_DIR ({new}) with different values: keep the one that "
            "opens your data (the one in DATA_DIR, if the bot ran with it) in KEYS_DIR and delete the other")
    if not new.exists():
        _write_owner_only(new, value)
    old.unlink()
    log.warning(
        "moved %s out of DATA_DIR to %s: back it up apart from the data; backups of DATA_DIR made until now "
        "hold it, so keep them as safe as the key (or rotate DATA_KEY)", old.name, new,
    )


def _write_owner_only(path: Path, value: str) -> bool:
    """Write a new 0600 file in a 0700 folder, whole or not at all; False if it exists already."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        path.parent.chmod(0o700)  # whatever the umask
    elif path.parent.stat().st_mode & 0o077:
        log.warning("%s can be entered by other users of this machine: chmod 700 it", path.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(value)
        file.flush()
        os.fsync(file.fileno())
    try:
        os.link(partial, path)  # atomic, and never over an existing file
    except FileExistsError:
        return False
    finally:
        partial.unlink()
    return True
