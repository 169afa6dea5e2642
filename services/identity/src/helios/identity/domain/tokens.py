"""Opaque session tokens: random, prefixed, and known to the server only by their sha256."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["SESSION_PREFIX", "hash_token", "new_session_token"]

SESSION_PREFIX = "hls_"


def new_session_token() -> str:
    """A new session token (256 random bits)."""
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """The sha256 under which a token is stored and looked up (tokens are high-entropy, so a fast
    hash suffices; the lookup is by hash, never by comparing the token)."""
    return hashlib.sha256(token.encode()).digest()
