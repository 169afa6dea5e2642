"""Opaque session tokens known to the server only by their sha256 (S1)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid

import pytest

from helios.identity.domain.model import Session
from helios.identity.domain.tokens import SESSION_PREFIX, hash_token, new_session_token

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _session(*, revoked_at: dt.datetime | None = None) -> Session:
    return Session(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        token_hash=hash_token(new_session_token()),
        created_at=NOW,
        expires_at=NOW + dt.timedelta(hours=12),
        ip="203.0.113.7",
        user_agent="pytest",
        revoked_at=revoked_at,
    )


def test_s1_session_token_is_prefixed_url_safe_and_256_bit() -> None:
    token = new_session_token()
    assert SESSION_PREFIX == "hls_"
    assert token.startswith(SESSION_PREFIX)
    body = token.removeprefix(SESSION_PREFIX)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", body)


def test_s1_session_tokens_are_unique() -> None:
    tokens = {new_session_token() for _ in range(1000)}
    assert len(tokens) == 1000


def test_s1_only_sha256_of_token_is_stored() -> None:
    token = new_session_token()
    stored = hash_token(token)
    assert stored == hashlib.sha256(token.encode()).digest()
    assert len(stored) == 32
    assert token.encode() not in stored
    assert hash_token(token) == stored


def test_s1_different_tokens_hash_differently() -> None:
    assert hash_token(new_session_token()) != hash_token(new_session_token())
    assert hash_token("hls_a") != hash_token("hls_b")


def test_s1_session_active_until_absolute_expiry() -> None:
    session = _session()
    assert session.is_active(NOW)
    assert session.is_active(NOW + dt.timedelta(hours=11, minutes=59))
    assert not session.is_active(NOW + dt.timedelta(hours=12))


def test_s3_revoked_session_is_not_active() -> None:
    assert not _session(revoked_at=NOW).is_active(NOW + dt.timedelta(seconds=1))
