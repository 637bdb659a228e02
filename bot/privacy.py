"""Pseudonyms and encryption at rest (DESIGN rule 4): no platform id or child's sentence in clear.

New data is sealed with AES-256-GCM under a key derived (HKDF) from each DATA_KEY Fernet key:
version byte | key id (4) | nonce (12) | ciphertext and tag. Fernet tokens from earlier versions
(url-safe base64, always starting with b"g") are still read.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

KEY_FILE = "data.key"
PEPPER_FILE = "id.pepper"

VERSION = b"\x01"  # never the first byte of a Fernet token
HKDF_INFO = b"oberih seal aes-256-gcm v1"
HEADER, NONCE, TAG = 5, 12, 16  # version + key id; GCM nonce; GCM tag
# One encoder for every seal (json.dumps with options builds a new one per call).
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


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
        """A keyed hash for a secret the child holds (the receipt code)."""
        return hmac.new(self._pepper, b"receipt:" + text.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, data: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return self._header + nonce + self._aead.encrypt(nonce, data, self._header)

    def decrypt(self, token: bytes) -> bytes:
        """AES-GCM tokens by their key id; anything else is an older Fernet token. InvalidToken if no key opens it."""
        if token[:1] != VERSION:
            return self._fernet.decrypt(token)
        header, nonce, sealed = token[:HEADER], token[HEADER:HEADER + NONCE], token[HEADER + NONCE:]
        if len(sealed) >= TAG:
            # The key id is authenticated, so only keys with this id can open the token (more than one on a collision).
            for aead in self._by_id.get(header[1:], ()):
                try:
                    return aead.decrypt(nonce, sealed, header)
                except InvalidTag:
                    pass
        raise InvalidToken

    def seal(self, value: Any) -> bytes:
        """Encrypt a JSON-serialisable value."""
        return self.encrypt(_to_json(value).encode())

    def unseal(self, token: bytes | None) -> Any:
        """Decrypt what `seal` made; None stays None."""
        if token is None:
            return None
        return json.loads(self.decrypt(token))


def _aes_key(fernet_key: str) -> tuple[bytes, AESGCM]:
    """A key id and an AES-256-GCM key derived from a Fernet key: the same bytes are not used raw by two ciphers."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
    derived = hkdf.derive(base64.urlsafe_b64decode(fernet_key.encode()))
    return hmac.new(derived, b"key id", hashlib.sha256).digest()[:4], AESGCM(derived)


def load_privacy(data_key: str | None, pepper: str | None, data_dir: Path) -> Privacy:
    """Keys from settings; on first run without them, generate owner-only files in data_dir."""
    keys = [part.strip() for part in (data_key or "").split(",") if part.strip()]
    if not keys:
        keys = [_read_or_create(data_dir / KEY_FILE, lambda: Fernet.generate_key().decode())]
    if not pepper:
        pepper = _read_or_create(data_dir / PEPPER_FILE, lambda: secrets.token_urlsafe(32))
    try:
        return Privacy(keys, pepper)
    except (ValueError, InvalidToken):
        raise ValueError("DATA_KEY must be one or more comma-separated Fernet keys (32 url-safe base64 bytes)") from None


def _read_or_create(path: Path, make: Any) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(value)
    log.warning(
        "generated a new secret in %s: move it into a secret store and set DATA_KEY / ID_PEPPER; "
        "losing it makes stored reports unreadable",
        path,
    )
    return value
