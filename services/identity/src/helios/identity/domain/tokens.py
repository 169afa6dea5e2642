"""Opaque session and one-time (e-mail) tokens: random, prefixed, known to the server only by
their sha256."""

from __future__ import annotations

import hashlib
import secrets

__all__ = [
    "ONE_TIME_PREFIX",
    "SESSION_PREFIX",
    "hash_token",
    "new_one_time_token",
    "new_session_token",
]

SESSION_PREFIX = "hls_"
ONE_TIME_PREFIX = "hlo_"


def new_session_token() -> str:
    """A new session token (256 random bits)."""
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def new_one_time_token() -> str:
    """A new one-time token for an e-mailed link (256 random bits, URL-safe)."""
    return ONE_TIME_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """The sha256 under which a token is stored and looked up (tokens are high-entropy, so a fast
    hash suffices; the lookup is by hash, never by comparing the token)."""
    return hashlib.sha256(token.encode()).digest()
