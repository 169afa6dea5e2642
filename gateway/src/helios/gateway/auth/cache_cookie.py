"""The 60-second session cache cookie (S2): identity's signed assertion, bound to the session.

Value: base64url(assertion) "." base64url(HMAC-SHA256(key, sha256(session token) || assertion)).
The HMAC binds the cached assertion to the session cookie it came from; the assertion's own
expiry (60 s) bounds how long a revoked session can still pass the hot path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from helios.kernel.errors import UnauthenticatedError
from helios.kernel.principal import AssertionVerifier
from helios.proto.common.v1 import principal_pb2

__all__ = ["CACHE_COOKIE", "CACHE_SECONDS", "SessionCache"]

CACHE_COOKIE = "helios_session_cache"
CACHE_SECONDS = 60


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCache:
    """Seals and opens cache cookies with the gateway's cookie key."""

    def __init__(self, key: bytes, verifier: AssertionVerifier) -> None:
        if len(key) < 32:
            raise ValueError("the cookie key must have at least 32 bytes")
        self._key = key
        self._verifier = verifier

    def _mac(self, token: str, assertion: bytes) -> bytes:
        bound = hashlib.sha256(token.encode()).digest() + assertion
        return hmac.new(self._key, bound, hashlib.sha256).digest()

    def seal(self, token: str, assertion: principal_pb2.PrincipalAssertion) -> str:
        """The cookie value for `assertion`, bound to the session `token`."""
        blob = assertion.SerializeToString()
        return f"{_b64(blob)}.{_b64(self._mac(token, blob))}"

    def open(
        self, token: str, value: str
    ) -> tuple[principal_pb2.Principal, principal_pb2.PrincipalAssertion] | None:
        """The cached principal and assertion, or None when the cookie is absent, tampered,
        bound to another session, or expired."""
        if not value or "." not in value:
            return None
        blob_text, mac_text = value.split(".", 1)
        try:
            blob, mac = _unb64(blob_text), _unb64(mac_text)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(token, blob)):
            return None
        try:
            assertion = principal_pb2.PrincipalAssertion.FromString(blob)
            return self._verifier.verify(assertion), assertion
        except (UnauthenticatedError, ValueError):
            return None
