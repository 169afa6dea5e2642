"""AI tokens (I1): `hai_` + 256 random bits, known to the broker only by their sha256, with a
short non-secret prefix by which people recognise a token in the UI.

The prefix differs from every user credential (`hls_` sessions, `hk_` API keys), so neither kind
can be mistaken for the other at the edge, and the lookup is by hash in the broker's own table: a
user session token never resolves as an AI token, nor the other way round.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

__all__ = ["AI_TOKEN_PREFIX", "NewAiToken", "hash_ai_token", "is_ai_token", "new_ai_token"]

AI_TOKEN_PREFIX = "hai_"  # noqa: S105 - a prefix, not a secret
_SHOWN_SECRET_CHARS = 6  # 36 of the 256 bits: enough to tell tokens apart, useless to guess
_TOKEN = re.compile(r"hai_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class NewAiToken:
    """A fresh token: `token` is shown once, `token_hash` stored, `display_prefix` shown in UIs."""

    token: str
    token_hash: bytes
    display_prefix: str


def hash_ai_token(token: str) -> bytes:
    """The sha256 under which a token is stored and looked up (256 random bits: a fast hash
    suffices; lookup is by hash, never by comparing tokens)."""
    return hashlib.sha256(token.encode()).digest()


def is_ai_token(token: str) -> bool:
    """Whether `token` has the shape of an AI token (says nothing about its validity)."""
    return _TOKEN.fullmatch(token) is not None


def new_ai_token() -> NewAiToken:
    """A new AI token, its hash and its display prefix."""
    token = AI_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return NewAiToken(
        token=token,
        token_hash=hash_ai_token(token),
        display_prefix=token[: len(AI_TOKEN_PREFIX) + _SHOWN_SECRET_CHARS],
    )
