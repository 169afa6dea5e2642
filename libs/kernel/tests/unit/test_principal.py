"""Signed principal assertions: verified when genuine, refused when forged, expired or unknown
(P1: services trust only principals identity signed)."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helios.kernel.errors import UnauthenticatedError
from helios.kernel.principal import (
    METADATA_KEY,
    AssertionSigner,
    AssertionVerifier,
    key_id_of,
    load_private_key,
    load_public_key,
    load_public_keys,
    write_keypair,
)
from helios.proto.common.v1 import principal_pb2

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _principal(actor_id: str = "user-1") -> principal_pb2.Principal:
    return principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER,
        actor_id=actor_id,
        org_id="org-1",
        session_id="sess-1",
        ip="203.0.113.9",
    )


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_p1_genuine_assertion_verifies_to_its_principal(key: Ed25519PrivateKey) -> None:
    assertion = AssertionSigner(key).sign(_principal(), now=NOW)
    verified = AssertionVerifier([key.public_key()]).verify(assertion, now=NOW)
    assert verified == _principal()
    assert METADATA_KEY.endswith("-bin")


def test_p1_assertion_claims_carry_key_id_and_ttl(key: Ed25519PrivateKey) -> None:
    assertion = AssertionSigner(key, ttl=dt.timedelta(seconds=30)).sign(_principal(), now=NOW)
    claims = principal_pb2.PrincipalClaims.FromString(assertion.claims)
    assert claims.key_id == key_id_of(key.public_key())
    assert claims.issued_at.ToDatetime(dt.UTC) == NOW
    assert claims.expires_at.ToDatetime(dt.UTC) == NOW + dt.timedelta(seconds=30)


def test_p1_forged_claims_refused(key: Ed25519PrivateKey) -> None:
    """Claims swapped for another principal under the original signature."""
    assertion = AssertionSigner(key).sign(_principal(), now=NOW)
    claims = principal_pb2.PrincipalClaims.FromString(assertion.claims)
    claims.principal.actor_id = "admin-0"
    forged = principal_pb2.PrincipalAssertion(
        claims=claims.SerializeToString(deterministic=True), signature=assertion.signature
    )
    with pytest.raises(UnauthenticatedError, match="signature"):
        AssertionVerifier([key.public_key()]).verify(forged, now=NOW)


def test_p1_signature_by_attacker_key_claiming_trusted_key_id_refused(
    key: Ed25519PrivateKey,
) -> None:
    attacker = Ed25519PrivateKey.generate()
    claims = principal_pb2.PrincipalClaims(
        principal=_principal("admin-0"), key_id=key_id_of(key.public_key())
    )
    claims.issued_at.FromDatetime(NOW)
    claims.expires_at.FromDatetime(NOW + dt.timedelta(seconds=60))
    body = claims.SerializeToString(deterministic=True)
    forged = principal_pb2.PrincipalAssertion(claims=body, signature=attacker.sign(body))
    with pytest.raises(UnauthenticatedError, match="signature"):
        AssertionVerifier([key.public_key()]).verify(forged, now=NOW)


def test_p1_truncated_signature_refused(key: Ed25519PrivateKey) -> None:
    assertion = AssertionSigner(key).sign(_principal(), now=NOW)
    broken = principal_pb2.PrincipalAssertion(
        claims=assertion.claims, signature=assertion.signature[:-1]
    )
    with pytest.raises(UnauthenticatedError):
        AssertionVerifier([key.public_key()]).verify(broken, now=NOW)


def test_p1_unknown_key_refused(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    assertion = AssertionSigner(other).sign(_principal(), now=NOW)
    with pytest.raises(UnauthenticatedError, match="unknown key"):
        AssertionVerifier([key.public_key()]).verify(assertion, now=NOW)


def test_p1_empty_assertion_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(UnauthenticatedError):
        AssertionVerifier([key.public_key()]).verify(principal_pb2.PrincipalAssertion(), now=NOW)


def test_p1_malformed_claims_refused(key: Ed25519PrivateKey) -> None:
    garbage = principal_pb2.PrincipalAssertion(claims=b"\xff\xff\xff\xff", signature=b"x")
    with pytest.raises(UnauthenticatedError, match="malformed"):
        AssertionVerifier([key.public_key()]).verify(garbage, now=NOW)


def test_p1_expired_assertion_refused(key: Ed25519PrivateKey) -> None:
    assertion = AssertionSigner(key).sign(_principal(), now=NOW)
    later = NOW + dt.timedelta(seconds=60 + 6)
    with pytest.raises(UnauthenticatedError, match="expired"):
        AssertionVerifier([key.public_key()]).verify(assertion, now=later)


def test_p1_expiry_tolerates_small_clock_skew(key: Ed25519PrivateKey) -> None:
    assertion = AssertionSigner(key).sign(_principal(), now=NOW)
    slightly_late = NOW + dt.timedelta(seconds=60 + 4)
    assert AssertionVerifier([key.public_key()]).verify(assertion, now=slightly_late).actor_id


def test_p1_assertion_from_the_future_refused(key: Ed25519PrivateKey) -> None:
    assertion = AssertionSigner(key).sign(_principal(), now=NOW + dt.timedelta(seconds=30))
    with pytest.raises(UnauthenticatedError, match="not yet valid"):
        AssertionVerifier([key.public_key()]).verify(assertion, now=NOW)


def test_p1_verifier_accepts_every_published_key_during_rotation(
    key: Ed25519PrivateKey,
) -> None:
    new_key = Ed25519PrivateKey.generate()
    verifier = AssertionVerifier([key.public_key(), new_key.public_key()])
    old = AssertionSigner(key).sign(_principal("old"), now=NOW)
    new = AssertionSigner(new_key).sign(_principal("new"), now=NOW)
    assert verifier.verify(old, now=NOW).actor_id == "old"
    assert verifier.verify(new, now=NOW).actor_id == "new"


def test_p1_keypair_files_round_trip_and_private_file_is_0600(tmp_path: Path) -> None:
    private_path, public_path = tmp_path / "principal.key", tmp_path / "principal.pub"
    write_keypair(private_path, public_path)
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    private, public = load_private_key(private_path), load_public_key(public_path)
    assert key_id_of(private.public_key()) == key_id_of(public)
    assert len(key_id_of(public)) == 16
    assertion = AssertionSigner(private).sign(_principal(), now=NOW)
    assert AssertionVerifier([public]).verify(assertion, now=NOW) == _principal()


def test_p1_loading_a_non_ed25519_key_refused(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    private_path, public_path = tmp_path / "ec.key", tmp_path / "ec.pub"
    private_path.write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_path.write_bytes(
        ec_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(TypeError, match="not an Ed25519 private key"):
        load_private_key(private_path)
    with pytest.raises(TypeError, match="not an Ed25519 public key"):
        load_public_key(public_path)


def test_p1_a_public_key_file_may_hold_the_old_and_the_new_key_while_rotating(
    tmp_path: Path,
) -> None:
    """Rotation without refused calls: both public keys in the file, in order; a file with
    none, or with another key type among them, is refused."""
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        write_keypair(folder / "k.key", folder / "k.pub")
    bundle = tmp_path / "principal.pub"
    bundle.write_bytes((first / "k.pub").read_bytes() + b"\n" + (second / "k.pub").read_bytes())
    keys = load_public_keys(bundle)
    assert [key_id_of(k) for k in keys] == [
        key_id_of(load_public_key(first / "k.pub")),
        key_id_of(load_public_key(second / "k.pub")),
    ]
    verifier = AssertionVerifier(keys)
    for folder in (first, second):
        signed = AssertionSigner(load_private_key(folder / "k.key")).sign(_principal(), now=NOW)
        assert verifier.verify(signed, now=NOW) == _principal()

    (tmp_path / "empty.pub").write_text("no key here\n")
    with pytest.raises(ValueError, match="no PEM public key"):
        load_public_keys(tmp_path / "empty.pub")
    ec_public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "mixed.pub").write_bytes((first / "k.pub").read_bytes() + ec_public)
    with pytest.raises(TypeError, match="not an Ed25519 public key"):
        load_public_keys(tmp_path / "mixed.pub")


def test_i2_broker_key_verifies_ai_principals_only(key: Ed25519PrivateKey) -> None:
    """I2: the AI broker's key signs AI principals (accepted) but never a person's: an assertion
    of a user principal under the broker's key is refused, while identity's key still signs
    users."""
    broker = Ed25519PrivateKey.generate()
    verifier = AssertionVerifier([key.public_key()], ai_keys=[broker.public_key()])
    ai = principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_AI, actor_id="user-1", session_id="ai-session-1"
    )
    assert verifier.verify(AssertionSigner(broker).sign(ai, now=NOW), now=NOW) == ai
    with pytest.raises(UnauthenticatedError, match="AI principals only"):
        verifier.verify(AssertionSigner(broker).sign(_principal(), now=NOW), now=NOW)
    assert verifier.verify(AssertionSigner(key).sign(_principal(), now=NOW), now=NOW).actor_id
