"""API keys for machine callers: format, hashing, permission lists and lifetimes.

A key reads `hk_<key id, 32 hex>_<secret, 43 URL-safe characters>`: the id finds the row, and
only the sha256 of the secret is stored and compared (in constant time). A key acts as its
creator in its org, narrowed to its permission keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from helios.kernel.errors import InvalidArgumentError

__all__ = [
    "API_KEY_PREFIX",
    "API_KEY_SESSION_PREFIX",
    "DEFAULT_TTL_DAYS",
    "MAX_PERMISSIONS",
    "MAX_TTL_DAYS",
    "SESSION_ONLY_PERMISSIONS",
    "ApiKey",
    "hash_secret",
    "key_lifetime",
    "new_api_key",
    "parse_api_key",
    "secret_matches",
    "validate_key_name",
    "validate_permissions",
]

API_KEY_PREFIX = "hk_"
API_KEY_SESSION_PREFIX = "apikey:"
"""Principals of API keys carry `apikey:<key id>` as their session id."""
DEFAULT_TTL_DAYS = 90
MAX_TTL_DAYS = 365
MAX_PERMISSIONS = 50
SESSION_ONLY_PERMISSIONS = frozenset(
    {
        "iam.user.impersonate",
        "identity.apiKey.create",
        "identity.mfa.enroll",
        "identity.mfa.stepUp",
        "identity.password.change",
    }
)
"""What only a person in a session may do: act as someone else, mint keys, change the
creator's own credentials. No key carries them."""
_TOKEN = re.compile(r"hk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})")
_PART = r"[a-z][a-zA-Z0-9]{0,62}"
_PERMISSION = re.compile(rf"{_PART}\.{_PART}\.{_PART}")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key (never the key itself: `secret_hash` is the sha256 of its secret)."""

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    permissions: tuple[str, ...]
    created_by: uuid.UUID
    created_at: dt.datetime
    expires_at: dt.datetime
    secret_hash: bytes
    last_used_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    def is_usable(self, now: dt.datetime) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and now < self.expires_at

    @property
    def session_id(self) -> str:
        """The session id its principals carry."""
        return f"{API_KEY_SESSION_PREFIX}{self.id}"


def hash_secret(secret: str) -> bytes:
    """The sha256 stored for a key's secret (256 random bits: a fast hash suffices)."""
    return hashlib.sha256(secret.encode()).digest()


def new_api_key() -> tuple[uuid.UUID, str, bytes]:
    """A fresh key id, the key to show once, and the hash of its secret."""
    key_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    return key_id, f"{API_KEY_PREFIX}{key_id.hex}_{secret}", hash_secret(secret)


def parse_api_key(token: str) -> tuple[uuid.UUID, str] | None:
    """The key id and secret of a well-formed key, else None."""
    found = _TOKEN.fullmatch(token)
    if found is None:
        return None
    return uuid.UUID(hex=found.group(1)), found.group(2)


def secret_matches(stored_hash: bytes, secret: str) -> bool:
    """Whether `secret` is the one whose hash is stored (constant-time comparison)."""
    return hmac.compare_digest(stored_hash, hash_secret(secret))


def validate_key_name(name: str) -> str:
    """The trimmed name (1..100 printable characters)."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 100 or not cleaned.isprintable():
        raise InvalidArgumentError("name must be 1-100 printable characters", field="name")
    return cleaned


def validate_permissions(keys: Iterable[str]) -> tuple[str, ...]:
    """The distinct permission keys, sorted: 1..MAX_PERMISSIONS of `<module>.<entity>.<verb>`
    (no scope suffix, no wildcard), none of SESSION_ONLY_PERMISSIONS."""
    distinct = sorted(set(keys))
    if not distinct:
        raise InvalidArgumentError("an API key needs at least one permission", field="permissions")
    if len(distinct) > MAX_PERMISSIONS:
        raise InvalidArgumentError(
            f"an API key may carry at most {MAX_PERMISSIONS} permissions", field="permissions"
        )
    for key in distinct:
        if not _PERMISSION.fullmatch(key):
            raise InvalidArgumentError(
                f"{key[:100]!r} is not a permission key <module>.<entity>.<verb>",
                field="permissions",
            )
        if key in SESSION_ONLY_PERMISSIONS:
            raise InvalidArgumentError(
                f"an API key cannot carry {key}: only a person in a session may use it",
                field="permissions",
            )
    return tuple(distinct)


def key_lifetime(ttl_days: int) -> dt.timedelta:
    """How long a new key works: DEFAULT_TTL_DAYS for 0, else 1..MAX_TTL_DAYS days."""
    if ttl_days == 0:
        return dt.timedelta(days=DEFAULT_TTL_DAYS)
    if not 1 <= ttl_days <= MAX_TTL_DAYS:
        raise InvalidArgumentError(
            f"ttl_days must be between 1 and {MAX_TTL_DAYS} (0 for {DEFAULT_TTL_DAYS})",
            field="ttl_days",
        )
    return dt.timedelta(days=ttl_days)
