"""Key material per algorithm: generation, signing and the public half as PEM or JWK.

Encryption material is 32 raw bytes (AES-256-GCM); signing material is an unencrypted PKCS#8 DER
private key. Signatures: Ed25519 raw 64 bytes, ECDSA P-256 DER (SHA-256), RSA-2048 PKCS#1 v1.5
(SHA-256). JWKs follow RFC 7517 / 7518 / 8037. Errors never carry key bytes.
"""

from __future__ import annotations

import base64
import enum
import os

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

__all__ = [
    "ENCRYPTION_ALGORITHMS",
    "SIGNING_ALGORITHMS",
    "Algorithm",
    "new_material",
    "public_jwk",
    "public_key_pem",
    "sign",
    "sign_digest",
]

AES_KEY_SIZE = 32
RSA_KEY_BITS = 2048
RSA_PUBLIC_EXPONENT = 65537
EC_COORDINATE_SIZE = 32

_SigningKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class Algorithm(enum.IntEnum):
    """Key algorithms; values match helios.proto.keyvault.v1.KeyAlgorithm."""

    AES_256_GCM = 1
    ED25519 = 2
    ECDSA_P256_SHA256 = 3
    RSA_2048_PKCS1_SHA256 = 4


ENCRYPTION_ALGORITHMS: frozenset[Algorithm] = frozenset({Algorithm.AES_256_GCM})
SIGNING_ALGORITHMS: frozenset[Algorithm] = frozenset(
    {Algorithm.ED25519, Algorithm.ECDSA_P256_SHA256, Algorithm.RSA_2048_PKCS1_SHA256}
)


def new_material(algorithm: Algorithm) -> bytes:
    """Fresh material: 32 random bytes for AES, else a new private key as PKCS#8 DER."""
    algorithm = Algorithm(algorithm)
    if algorithm is Algorithm.AES_256_GCM:
        return os.urandom(AES_KEY_SIZE)
    private: _SigningKey
    if algorithm is Algorithm.ED25519:
        private = ed25519.Ed25519PrivateKey.generate()
    elif algorithm is Algorithm.ECDSA_P256_SHA256:
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm is Algorithm.RSA_2048_PKCS1_SHA256:
        private = rsa.generate_private_key(
            public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS
        )
    else:
        raise ValueError(f"unknown key algorithm {algorithm!r}")
    return private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def sign(algorithm: Algorithm, material: bytes, message: bytes) -> bytes:
    """Sign `message` (the algorithm hashes it); ValueError for an encryption algorithm."""
    private = _load_signing_key(algorithm, material)
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(message)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return private.sign(message, ec.ECDSA(hashes.SHA256()))
    return private.sign(message, padding.PKCS1v15(), hashes.SHA256())


def sign_digest(algorithm: Algorithm, material: bytes, digest: bytes) -> bytes:
    """Sign a precomputed SHA-256 `digest` (ECDSA P-256, RSA PKCS#1 v1.5); ValueError for
    Ed25519 (pure EdDSA signs messages, not digests), encryption keys or a digest that is not
    32 bytes."""
    if len(digest) != 32:
        raise ValueError("a SHA-256 digest has 32 bytes")
    private = _load_signing_key(algorithm, material)
    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return private.sign(digest, ec.ECDSA(prehashed))
    if isinstance(private, rsa.RSAPrivateKey):
        return private.sign(digest, padding.PKCS1v15(), prehashed)
    raise ValueError("Ed25519 signs messages, not digests")


def public_jwk(algorithm: Algorithm, material: bytes, kid: str) -> dict[str, str]:
    """The public key as a JWK with `kid` and `use: sig`; ValueError for an encryption algorithm."""
    public = _load_signing_key(algorithm, material).public_key()
    jwk: dict[str, str]
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": _b64url(raw)}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "x": _b64url(numbers.x.to_bytes(EC_COORDINATE_SIZE, "big")),
            "y": _b64url(numbers.y.to_bytes(EC_COORDINATE_SIZE, "big")),
        }
    else:
        rsa_numbers = public.public_numbers()
        jwk = {
            "kty": "RSA",
            "alg": "RS256",
            "n": _b64url(_uint_bytes(rsa_numbers.n)),
            "e": _b64url(_uint_bytes(rsa_numbers.e)),
        }
    jwk["kid"] = kid
    jwk["use"] = "sig"
    return jwk


def public_key_pem(algorithm: Algorithm, material: bytes) -> str:
    """The public key as a PEM SubjectPublicKeyInfo; ValueError for an encryption algorithm."""
    public = _load_signing_key(algorithm, material).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def _load_signing_key(algorithm: Algorithm, material: bytes) -> _SigningKey:
    """Load PKCS#8 DER material and check it is the key `algorithm` says; ValueError otherwise."""
    algorithm = Algorithm(algorithm)
    if algorithm not in SIGNING_ALGORITHMS:
        raise ValueError(f"{algorithm.name} is not a signing algorithm")
    try:
        private = serialization.load_der_private_key(material, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(f"key material is not a {algorithm.name} private key") from None
    if algorithm is Algorithm.ED25519 and isinstance(private, ed25519.Ed25519PrivateKey):
        return private
    if (
        algorithm is Algorithm.ECDSA_P256_SHA256
        and isinstance(private, ec.EllipticCurvePrivateKey)
        and isinstance(private.curve, ec.SECP256R1)
    ):
        return private
    if (
        algorithm is Algorithm.RSA_2048_PKCS1_SHA256
        and isinstance(private, rsa.RSAPrivateKey)
        and private.key_size == RSA_KEY_BITS
    ):
        return private
    raise ValueError(f"key material is not a {algorithm.name} private key")


def _uint_bytes(value: int) -> bytes:
    """Minimal big-endian octets of a positive integer (RFC 7518 section 6.3.1)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
