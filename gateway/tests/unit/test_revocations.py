"""The revocation deny set and the cache cookie's own lifetime, with a driven clock (S2, S3, S6)."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helios.gateway.auth.cache_cookie import SessionCache
from helios.gateway.auth.revocations import REVOKED_FOR, Revocations
from helios.kernel.principal import AssertionSigner, AssertionVerifier
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2

pytestmark = pytest.mark.unit

TOKEN = "hls_" + "T" * 43


class _Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def _principal(
    session_id: str = "s1", user_id: str = "u1", impersonator: str = ""
) -> principal_pb2.Principal:
    return principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER,
        actor_id=user_id,
        org_id="o1",
        session_id=session_id,
        impersonator_id=impersonator,
    )


def _event(action: str, resource_id: str, failed: bool = False) -> events_pb2.AuditEvent:
    return events_pb2.AuditEvent(
        action=action,
        resource_id=resource_id,
        outcome=events_pb2.AUDIT_OUTCOME_FAILURE if failed else events_pb2.AUDIT_OUTCOME_SUCCESS,
    )


def test_s3_session_revocation_refuses_that_session_until_cookies_sealed_before_expired() -> None:
    """S3: a revoked session's cached assertions are refused for the cookie's 60 s plus the
    verifiers' skew, then the entry is gone; other sessions are untouched."""
    clock = _Clock()
    revocations = Revocations(clock)
    revocations.apply(_event("identity.session.revoke", "s1"))
    assert revocations.refuses(_principal("s1"))
    assert not revocations.refuses(_principal("s2", "u2"))
    clock.now += REVOKED_FOR - dt.timedelta(seconds=1)
    assert revocations.refuses(_principal("s1"))
    clock.now += dt.timedelta(seconds=1)
    assert not revocations.refuses(_principal("s1"))
    assert dt.timedelta(seconds=60) <= REVOKED_FOR


def test_s3_user_revocation_refuses_every_session_of_the_user() -> None:
    """S3: RevokeUserSessions (and password resets) refuse every cached session of the user."""
    revocations = Revocations(_Clock())
    revocations.apply(_event("iam.user.revokeSessions", "u1"))
    assert revocations.refuses(_principal("s1", "u1"))
    assert revocations.refuses(_principal("s9", "u1"))
    assert not revocations.refuses(_principal("s2", "u2"))


def test_s3_failures_and_other_actions_are_ignored() -> None:
    """S3: a failed revoke or an unrelated action adds nothing."""
    revocations = Revocations(_Clock())
    revocations.apply(_event("identity.session.revoke", "s1", failed=True))
    revocations.apply(_event("identity.user.signIn", "s1"))
    assert not revocations.refuses(_principal("s1"))
    assert len(revocations) == 0


def test_s3_memory_stays_bounded_expired_entries_dropped() -> None:
    """S3: entries older than REVOKED_FOR are dropped when new ones arrive."""
    clock = _Clock()
    revocations = Revocations(clock)
    for i in range(1000):
        revocations.revoke_session(f"s{i}")
        revocations.revoke_user(f"u{i}")
    assert len(revocations) == 2000
    clock.now += REVOKED_FOR
    revocations.revoke_session("fresh")
    assert len(revocations) == 1


def _cache(clock: _Clock) -> tuple[SessionCache, AssertionSigner]:
    key = Ed25519PrivateKey.generate()
    verifier = AssertionVerifier([key.public_key()])
    return SessionCache(secrets.token_bytes(32), verifier, clock), AssertionSigner(key)


def test_s2_cache_cookie_honoured_for_60_seconds_by_the_gateway_clock() -> None:
    """S2: a cache cookie opens until 59 s after sealing and never from 60 s on; a cookie bound
    to another session or tampered with never opens."""
    clock = _Clock()
    cache, signer = _cache(clock)
    value = cache.seal(TOKEN, signer.sign(_principal(), clock.now))
    assert cache.open(TOKEN, value) is not None
    assert cache.open("hls_" + "X" * 43, value) is None
    assert cache.open(TOKEN, value[:-2] + ("AA" if value[-2:] != "AA" else "BB")) is None
    clock.now += dt.timedelta(seconds=59)
    assert cache.open(TOKEN, value) is not None
    clock.now += dt.timedelta(seconds=1)
    assert cache.open(TOKEN, value) is None


def test_s2_cache_cookie_sealed_in_the_future_refused() -> None:
    """S2: a cookie whose seal time lies beyond the allowed skew (a wrong clock) is refused."""
    clock = _Clock()
    cache, signer = _cache(clock)
    assertion = signer.sign(_principal(), clock.now)
    clock.now += dt.timedelta(seconds=6)
    value = cache.seal(TOKEN, assertion)
    clock.now -= dt.timedelta(seconds=6)
    assert cache.open(TOKEN, value) is None


def test_s6_impersonation_never_opens_from_the_cache() -> None:
    """S6: an impersonation's assertion is never served from a cache cookie."""
    clock = _Clock()
    cache, signer = _cache(clock)
    value = cache.seal(TOKEN, signer.sign(_principal(impersonator="admin"), clock.now))
    assert cache.open(TOKEN, value) is None
