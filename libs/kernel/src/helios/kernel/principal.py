"""Signed principal assertions (DESIGN.md section 2): short-lived, Ed25519, carried in metadata."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from helios.kernel.errors import UnauthenticatedError
from helios.kernel.tls import write_secret
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "METADATA_KEY",
    "AssertionSigner",
    "AssertionVerifier",
    "key_id_of",
    "load_private_key",
    "load_public_key",
    "load_public_keys",
    "write_keypair",
]

METADATA_KEY = "helios-principal-bin"
_DEFAULT_TTL = dt.timedelta(seconds=60)
_CLOCK_SKEW = dt.timedelta(seconds=5)
_PEM_PUBLIC_KEY = re.compile(
    rb"-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----"
)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """A short stable id of a public key (first 16 hex digits of sha256 of its raw bytes)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Load a PEM Ed25519 private key; raises TypeError for another key type."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Load a PEM Ed25519 public key; raises TypeError for another key type."""
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise TypeError(f"{path} is not an Ed25519 public key")
    return key


def load_public_keys(path: Path) -> list[Ed25519PublicKey]:
    """Every PEM Ed25519 public key in the file, in order (one, or several while a signing key
    is rotated: the new one is added everywhere before identity signs with it, the old one
    removed after); ValueError for a file without one, TypeError for another key type."""
    text = path.read_bytes()
    blocks = _PEM_PUBLIC_KEY.findall(text)
    if not blocks:
        raise ValueError(f"{path} holds no PEM public key")
    keys = []
    for block in blocks:
        key = serialization.load_pem_public_key(block)
        if not isinstance(key, Ed25519PublicKey):
            raise TypeError(f"{path} holds a key that is not an Ed25519 public key")
        keys.append(key)
    return keys


def write_keypair(private_path: Path, public_path: Path) -> None:
    """Create an Ed25519 key pair (private file 0600) for signing principal assertions."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_secret(private_path, pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


class AssertionSigner:
    """Signs principals into assertions; held by identity only."""

    def __init__(self, key: Ed25519PrivateKey, ttl: dt.timedelta = _DEFAULT_TTL) -> None:
        self._key = key
        self._ttl = ttl
        self._key_id = key_id_of(key.public_key())

    def sign(
        self, principal: principal_pb2.Principal, now: dt.datetime | None = None
    ) -> principal_pb2.PrincipalAssertion:
        """A fresh assertion of `principal`, valid for the signer's ttl."""
        issued = now or dt.datetime.now(dt.UTC)
        claims = principal_pb2.PrincipalClaims(principal=principal, key_id=self._key_id)
        claims.issued_at.FromDatetime(issued)
        claims.expires_at.FromDatetime(issued + self._ttl)
        body = claims.SerializeToString(deterministic=True)
        return principal_pb2.PrincipalAssertion(claims=body, signature=self._key.sign(body))


class AssertionVerifier:
    """Verifies assertions with identity's published public key(s), and with the AI broker's
    `ai_keys`, whose assertions are accepted only for AI principals (I2: a broker can never
    speak for a person directly)."""

    def __init__(
        self, keys: list[Ed25519PublicKey], ai_keys: list[Ed25519PublicKey] | None = None
    ) -> None:
        self._keys = {key_id_of(key): key for key in keys}
        self._ai_key_ids = frozenset(key_id_of(key) for key in ai_keys or ())
        self._keys.update({key_id_of(key): key for key in ai_keys or ()})

    def verify(
        self, assertion: principal_pb2.PrincipalAssertion, now: dt.datetime | None = None
    ) -> principal_pb2.Principal:
        """The asserted principal; raises UnauthenticatedError if forged, unknown-key or expired."""
        claims = principal_pb2.PrincipalClaims()
        try:
            claims.ParseFromString(assertion.claims)
        except Exception as exc:
            raise UnauthenticatedError("malformed principal assertion") from exc
        key = self._keys.get(claims.key_id)
        if key is None:
            raise UnauthenticatedError("principal assertion signed by an unknown key")
        try:
            key.verify(assertion.signature, assertion.claims)
        except InvalidSignature as exc:
            raise UnauthenticatedError("principal assertion signature is invalid") from exc
        moment = now or dt.datetime.now(dt.UTC)
        if claims.expires_at.ToDatetime(dt.UTC) < moment - _CLOCK_SKEW:
            raise UnauthenticatedError("principal assertion has expired")
        if claims.issued_at.ToDatetime(dt.UTC) > moment + _CLOCK_SKEW:
            raise UnauthenticatedError("principal assertion is not yet valid")
        if (
            claims.key_id in self._ai_key_ids
            and claims.principal.actor_type != principal_pb2.ACTOR_TYPE_AI
        ):
            raise UnauthenticatedError("this key may sign AI principals only")
        return claims.principal
