"""Step-up tokens (I3: a dangerous AI action may need a fresh second factor): accepted only when
identity made them for exactly this person, session, org, purpose and object, and not expired."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helios.kernel.errors import PermissionDeniedError, UnauthenticatedError
from helios.kernel.principal import AssertionVerifier
from helios.kernel.step_up import STEP_UP_PREFIX, StepUpGrant, StepUpSigner, StepUpVerifier
from helios.proto.common.v1 import principal_pb2

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(minutes=5)
GRANT = StepUpGrant(
    user_id="u1",
    session_id="s1",
    org_id="o1",
    purpose="ai.invocation.confirm",
    binding="inv-1",
    method="totp",
)
KEY = Ed25519PrivateKey.generate()


def _verifier() -> StepUpVerifier:
    return StepUpVerifier([KEY.public_key()])


def test_i3_step_up_token_made_for_this_step_is_accepted() -> None:
    token, token_id = StepUpSigner(KEY).issue(GRANT, NOW, TTL)
    assert token.startswith(STEP_UP_PREFIX)
    assert _verifier().verify(token, GRANT, NOW + dt.timedelta(minutes=4)) == token_id


@pytest.mark.parametrize(
    "field", ["user_id", "session_id", "org_id", "purpose", "binding"], ids=str
)
def test_i3_step_up_token_for_another_step_is_refused(field: str) -> None:
    token, _ = StepUpSigner(KEY).issue(GRANT, NOW, TTL)
    other = dataclasses.replace(GRANT, **{field: "other"})
    with pytest.raises(PermissionDeniedError, match="made for another"):
        _verifier().verify(token, other, NOW)


def test_i3_expired_step_up_token_is_refused() -> None:
    token, _ = StepUpSigner(KEY).issue(GRANT, NOW, TTL)
    with pytest.raises(PermissionDeniedError, match="expired"):
        _verifier().verify(token, GRANT, NOW + TTL + dt.timedelta(seconds=6))


def test_i3_step_up_token_of_another_key_or_tampered_is_refused() -> None:
    forged, _ = StepUpSigner(Ed25519PrivateKey.generate()).issue(GRANT, NOW, TTL)
    with pytest.raises(PermissionDeniedError, match="unknown key"):
        _verifier().verify(forged, GRANT, NOW)
    token, _ = StepUpSigner(KEY).issue(GRANT, NOW, TTL)
    body, _, signature = token.partition(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(PermissionDeniedError, match="signature is invalid"):
        _verifier().verify(f"{body}.{flipped}", GRANT, NOW)


@pytest.mark.parametrize(
    "token", ["", "123456", "hsu_", "hsu_abc", "hsu_!!.!!", "hsu_" + "A" * 2000], ids=repr
)
def test_i3_malformed_step_up_token_is_refused(token: str) -> None:
    with pytest.raises(PermissionDeniedError):
        _verifier().verify(token, GRANT, NOW)


def test_i3_step_up_signature_never_passes_for_a_principal_assertion() -> None:
    """Both are signed with identity's key: the domain label keeps them apart."""
    token, _ = StepUpSigner(KEY).issue(GRANT, NOW, TTL)
    body_text, _, signature_text = token.removeprefix(STEP_UP_PREFIX).partition(".")

    def raw(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    assertion = principal_pb2.PrincipalAssertion(
        claims=raw(body_text), signature=raw(signature_text)
    )
    with pytest.raises(UnauthenticatedError):
        AssertionVerifier([KEY.public_key()]).verify(assertion, NOW)
