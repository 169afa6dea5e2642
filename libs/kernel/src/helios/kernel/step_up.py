"""Step-up tokens: identity's signed proof of a fresh second factor for one purpose and object."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.message import DecodeError

from helios.kernel.errors import PermissionDeniedError
from helios.kernel.principal import key_id_of
from helios.proto.common.v1 import step_up_pb2

__all__ = ["STEP_UP_PREFIX", "StepUpGrant", "StepUpSigner", "StepUpVerifier"]

STEP_UP_PREFIX = "hsu_"
# Signed bytes are this label followed by the claims. The leading zero byte is field number 0,
# which no protobuf message may start with: a step-up signature can never pass for a principal
# assertion's (whose signed bytes are a PrincipalClaims message), nor the reverse.
_DOMAIN = b"\x00helios.step-up.v1\x00"
_CLOCK_SKEW = dt.timedelta(seconds=5)
_MAX_TOKEN_CHARS = 1024


@dataclass(frozen=True, slots=True)
class StepUpGrant:
    """Who stepped up, in which session and org, for what and with which factor."""

    user_id: str
    session_id: str
    org_id: str
    purpose: str
    binding: str
    method: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StepUpSigner:
    """Issues step-up tokens with identity's Ed25519 key; held by identity only."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._key_id = key_id_of(key.public_key())

    def issue(self, grant: StepUpGrant, now: dt.datetime, ttl: dt.timedelta) -> tuple[str, str]:
        """A token for `grant` valid for `ttl` from `now`, and its random id."""
        token_id = secrets.token_hex(16)
        claims = step_up_pb2.StepUpClaims(
            user_id=grant.user_id,
            session_id=grant.session_id,
            org_id=grant.org_id,
            purpose=grant.purpose,
            binding=grant.binding,
            method=grant.method,
            token_id=token_id,
            key_id=self._key_id,
        )
        claims.issued_at.FromDatetime(now)
        claims.expires_at.FromDatetime(now + ttl)
        body = claims.SerializeToString(deterministic=True)
        signature = self._key.sign(_DOMAIN + body)
        return f"{STEP_UP_PREFIX}{_b64(body)}.{_b64(signature)}", token_id


class StepUpVerifier:
    """Checks step-up tokens with identity's published public key(s)."""

    def __init__(self, keys: list[Ed25519PublicKey]) -> None:
        self._keys = {key_id_of(key): key for key in keys}

    def verify(self, token: str, expected: StepUpGrant, now: dt.datetime) -> str:
        """The token's id when it is identity's, unexpired, and made for exactly `expected`
        (its method is not compared); PermissionDeniedError otherwise, one message per cause."""
        claims = self._claims(token)
        if claims.expires_at.ToDatetime(dt.UTC) < now - _CLOCK_SKEW:
            raise PermissionDeniedError("the step-up has expired: step up again")
        if claims.issued_at.ToDatetime(dt.UTC) > now + _CLOCK_SKEW:
            raise PermissionDeniedError("the step-up is not valid yet")
        made_for = (
            claims.user_id,
            claims.session_id,
            claims.org_id,
            claims.purpose,
            claims.binding,
        )
        wanted = (
            expected.user_id,
            expected.session_id,
            expected.org_id,
            expected.purpose,
            expected.binding,
        )
        if made_for != wanted:
            raise PermissionDeniedError(
                "this step-up was made for another person, session, purpose or object"
            )
        return claims.token_id

    def _claims(self, token: str) -> step_up_pb2.StepUpClaims:
        malformed = PermissionDeniedError("the step-up token is malformed")
        if len(token) > _MAX_TOKEN_CHARS or not token.startswith(STEP_UP_PREFIX):
            raise malformed
        body_text, dot, signature_text = token.removeprefix(STEP_UP_PREFIX).partition(".")
        if not dot:
            raise malformed
        claims = step_up_pb2.StepUpClaims()
        try:
            body, signature = _unb64(body_text), _unb64(signature_text)
            claims.ParseFromString(body)
        except (binascii.Error, ValueError, DecodeError) as exc:
            raise malformed from exc
        key = self._keys.get(claims.key_id)
        if key is None:
            raise PermissionDeniedError("the step-up token is signed by an unknown key")
        try:
            key.verify(signature, _DOMAIN + body)
        except InvalidSignature as exc:
            raise PermissionDeniedError("the step-up token's signature is invalid") from exc
        return claims
