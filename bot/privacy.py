"""Pseudonyms and encryption at rest (DESIGN rule 4): no platform id or child's sentence in clear."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)

KEY_FILE = "data.key"
PEPPER_FILE = "id.pepper"


class Privacy:
    """Keyed hashes of platform ids and Fernet encryption; old keys still decrypt (rotation)."""

    def __init__(self, data_keys: list[str], pepper: str) -> None:
        self._fernet = MultiFernet([Fernet(key.encode()) for key in data_keys])
        self._pepper = pepper.encode()

    def pseudonym(self, channel: str, platform_id: object) -> str:
        """A stable keyed hash of a channel and an id: the only way a child is known to storage."""
        message = f"{channel}:{platform_id}".encode()
        return hmac.new(self._pepper, message, hashlib.sha256).hexdigest()

    def secret_hash(self, text: str) -> str:
        """A keyed hash for a secret the child holds (the receipt code)."""
        return hmac.new(self._pepper, b"receipt:" + text.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        return self._fernet.decrypt(token)

    def seal(self, value: Any) -> bytes:
        """Encrypt a JSON-serialisable value."""
        return self.encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())

    def unseal(self, token: bytes | None) -> Any:
        """Decrypt what `seal` made; None stays None."""
        if token is None:
            return None
        return json.loads(self.decrypt(token))


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
