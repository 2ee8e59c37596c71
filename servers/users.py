"""The user table: user1..userN with password pw-<k>, stored as salted PBKDF2 hashes."""

from __future__ import annotations

import hashlib
import hmac
import os
import re

_USERNAME = re.compile(r"user([1-9][0-9]{0,9})")


class UserTable:
    """Salted PBKDF2-SHA256 hashes, computed once at start-up like a real user database."""

    def __init__(self, count: int, iterations: int) -> None:
        self._iterations = iterations
        self._hashes: dict[str, tuple[bytes, bytes]] = {}
        for k in range(1, count + 1):
            salt = os.urandom(16)
            self._hashes[f"user{k}"] = (salt, self._hash(f"pw-{k}", salt))

    def _hash(self, password: str, salt: bytes) -> bytes:
        return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, self._iterations)

    def __len__(self) -> int:
        return len(self._hashes)

    def check(self, username: str, password: str) -> bool:
        """True when the password matches; unknown users cost a hash too (no timing oracle)."""
        entry = self._hashes.get(username) if _USERNAME.fullmatch(username) else None
        salt, expected = entry if entry else (b"\0" * 16, b"\0" * 32)
        ok = hmac.compare_digest(self._hash(password, salt), expected)
        return ok and entry is not None
