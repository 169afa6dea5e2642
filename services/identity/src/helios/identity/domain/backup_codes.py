"""Backup codes (A3): ten random single-use codes, shown once, stored as salted hashes."""

from __future__ import annotations

import hashlib
import secrets
import uuid

__all__ = ["BACKUP_CODE_COUNT", "hash_backup_code", "new_backup_codes"]

BACKUP_CODE_COUNT = 10
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32: no 0, 1, 8, 9 to mistake for O, I, B, g
_LENGTH = 10  # 50 random bits


def new_backup_codes() -> list[str]:
    """Ten distinct codes like `ABCDE-FGHJK`."""
    codes: set[str] = set()
    while len(codes) < BACKUP_CODE_COUNT:
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        codes.add(f"{raw[:5]}-{raw[5:]}")
    return sorted(codes)


def _normalize(code: str) -> str:
    """Upper case without separators or spaces, as users may type it."""
    return "".join(code.split()).replace("-", "").upper()


def hash_backup_code(user_id: uuid.UUID, code: str) -> bytes:
    """The sha256 under which a user's code is stored, salted with the user id so that equal
    codes of two users never share a hash. Lookups are by this hash."""
    normal = _normalize(code)
    return hashlib.sha256(user_id.bytes + normal.encode()).digest()
