"""The 60-second session cache cookie (S2): identity's signed assertion, bound to the session.

Value: base64url(assertion) "." base64url(sealed_at) "." base64url(HMAC-SHA256(key,
sha256(session token) || sealed_at || assertion)), `sealed_at` being the gateway's clock in whole
seconds (8 bytes, big-endian) when the cookie was made. The HMAC binds the cached assertion to
the session cookie it came from; the gateway honours it for CACHE_SECONDS after sealing (by its
own clock, whatever the browser does with Max-Age) and only while the assertion itself is valid.
An impersonation is never cached: it is resolved again on every request (S6).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable

from helios.kernel.errors import UnauthenticatedError
from helios.kernel.principal import AssertionVerifier
from helios.proto.common.v1 import principal_pb2

__all__ = ["CACHE_COOKIE", "CACHE_SECONDS", "CLOCK_SKEW", "SessionCache"]

CACHE_COOKIE = "helios_session_cache"
CACHE_SECONDS = 60
CLOCK_SKEW = dt.timedelta(seconds=5)
"""How far in the future another replica's seal time may lie (clocks of replicas differ)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SessionCache:
    """Seals and opens cache cookies with the gateway's cookie key."""

    def __init__(
        self,
        key: bytes,
        verifier: AssertionVerifier,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        if len(key) < 32:
            raise ValueError("the cookie key must have at least 32 bytes")
        self._key = key
        self._verifier = verifier
        self._clock = clock

    def _mac(self, token: str, sealed_at: bytes, assertion: bytes) -> bytes:
        bound = hashlib.sha256(token.encode()).digest() + sealed_at + assertion
        return hmac.new(self._key, bound, hashlib.sha256).digest()

    def seal(self, token: str, assertion: principal_pb2.PrincipalAssertion) -> str:
        """The cookie value for `assertion`, bound to the session `token`, sealed now."""
        blob = assertion.SerializeToString()
        sealed_at = int(self._clock().timestamp()).to_bytes(8, "big")
        return f"{_b64(blob)}.{_b64(sealed_at)}.{_b64(self._mac(token, sealed_at, blob))}"

    def open(
        self, token: str, value: str
    ) -> tuple[principal_pb2.Principal, principal_pb2.PrincipalAssertion] | None:
        """The cached principal and assertion, or None when the cookie is absent, malformed,
        tampered, bound to another session, sealed CACHE_SECONDS ago or more, carries an
        expired assertion, or is an impersonation."""
        parts = value.split(".")
        if len(parts) != 3:
            return None
        try:
            blob, sealed_at, mac = (_unb64(part) for part in parts)
        except (binascii.Error, ValueError):
            return None
        if len(sealed_at) != 8 or not hmac.compare_digest(mac, self._mac(token, sealed_at, blob)):
            return None
        now = self._clock()
        sealed = dt.datetime.fromtimestamp(int.from_bytes(sealed_at, "big"), dt.UTC)
        if not sealed - CLOCK_SKEW <= now < sealed + dt.timedelta(seconds=CACHE_SECONDS):
            return None
        try:
            assertion = principal_pb2.PrincipalAssertion.FromString(blob)
            principal = self._verifier.verify(assertion, now)
        except (UnauthenticatedError, ValueError):
            return None
        if principal.impersonator_id:
            return None
        return principal, assertion
