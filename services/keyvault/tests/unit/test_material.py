"""Key material: generation, signatures that verify with the published PEM and JWK (E3)."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from helios.keyvault.domain.material import (
    ENCRYPTION_ALGORITHMS,
    SIGNING_ALGORITHMS,
    Algorithm,
    new_material,
    public_jwk,
    public_key_pem,
    sign,
)
from helios.proto.keyvault.v1 import keyvault_pb2

pytestmark = pytest.mark.unit

MESSAGE = b"From: a@example.org\r\nSubject: hello\r\n\r\nbody"
KID = "6f1c2a9e-0b7d-4e53-9a51-3c1f0e2d4b6a:1"

_PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@pytest.fixture(scope="module")
def materials() -> dict[Algorithm, bytes]:
    return {algorithm: new_material(algorithm) for algorithm in Algorithm}


def _b64url_decode(value: str) -> bytes:
    assert "=" not in value
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _key_from_jwk(jwk: dict[str, str]) -> _PublicKey:
    """Rebuild the public key from the JWK members alone, as a verifier would."""
    if jwk["kty"] == "OKP":
        return ed25519.Ed25519PublicKey.from_public_bytes(_b64url_decode(jwk["x"]))
    if jwk["kty"] == "EC":
        x = int.from_bytes(_b64url_decode(jwk["x"]), "big")
        y = int.from_bytes(_b64url_decode(jwk["y"]), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    n = int.from_bytes(_b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(_b64url_decode(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def _verify(public: _PublicKey, signature: bytes, message: bytes) -> None:
    if isinstance(public, ed25519.Ed25519PublicKey):
        public.verify(signature, message)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def test_e3_algorithm_values_match_the_proto_enum() -> None:
    for algorithm in Algorithm:
        wire_value = keyvault_pb2.KeyAlgorithm.Value(f"KEY_ALGORITHM_{algorithm.name}")
        assert int(wire_value) == int(algorithm)
    assert {Algorithm.AES_256_GCM} == ENCRYPTION_ALGORITHMS
    assert set(Algorithm) - ENCRYPTION_ALGORITHMS == SIGNING_ALGORITHMS


def test_e3_aes_material_is_32_random_bytes() -> None:
    first, second = new_material(Algorithm.AES_256_GCM), new_material(Algorithm.AES_256_GCM)
    assert len(first) == 32
    assert len(second) == 32
    assert first != second


@pytest.mark.parametrize(
    ("algorithm", "key_type"),
    [
        (Algorithm.ED25519, ed25519.Ed25519PrivateKey),
        (Algorithm.ECDSA_P256_SHA256, ec.EllipticCurvePrivateKey),
        (Algorithm.RSA_2048_PKCS1_SHA256, rsa.RSAPrivateKey),
    ],
)
def test_e3_signing_material_is_unencrypted_pkcs8_der(
    materials: dict[Algorithm, bytes], algorithm: Algorithm, key_type: type
) -> None:
    private = serialization.load_der_private_key(materials[algorithm], password=None)
    assert isinstance(private, key_type)
    reencoded = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert reencoded == materials[algorithm]
    if isinstance(private, ec.EllipticCurvePrivateKey):
        assert isinstance(private.curve, ec.SECP256R1)
    if isinstance(private, rsa.RSAPrivateKey):
        assert private.key_size == 2048
        assert private.public_key().public_numbers().e == 65537


@pytest.mark.parametrize("algorithm", sorted(SIGNING_ALGORITHMS))
def test_e3_signature_verifies_with_the_pem_public_key(
    materials: dict[Algorithm, bytes], algorithm: Algorithm
) -> None:
    signature = sign(algorithm, materials[algorithm], MESSAGE)
    pem = public_key_pem(algorithm, materials[algorithm])
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    public = serialization.load_pem_public_key(pem.encode("ascii"))
    assert isinstance(
        public, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    )
    _verify(public, signature, MESSAGE)
    with pytest.raises(InvalidSignature):
        _verify(public, signature, MESSAGE + b".")


@pytest.mark.parametrize("algorithm", sorted(SIGNING_ALGORITHMS))
def test_e3_signature_verifies_with_the_key_rebuilt_from_the_jwk(
    materials: dict[Algorithm, bytes], algorithm: Algorithm
) -> None:
    signature = sign(algorithm, materials[algorithm], MESSAGE)
    public = _key_from_jwk(public_jwk(algorithm, materials[algorithm], KID))
    _verify(public, signature, MESSAGE)
    with pytest.raises(InvalidSignature):
        _verify(public, signature, b"another message")


def test_e3_signature_encodings(materials: dict[Algorithm, bytes]) -> None:
    assert len(sign(Algorithm.ED25519, materials[Algorithm.ED25519], MESSAGE)) == 64
    der = sign(Algorithm.ECDSA_P256_SHA256, materials[Algorithm.ECDSA_P256_SHA256], MESSAGE)
    r, s = decode_dss_signature(der)
    assert r > 0
    assert s > 0
    rsa_signature = sign(
        Algorithm.RSA_2048_PKCS1_SHA256, materials[Algorithm.RSA_2048_PKCS1_SHA256], MESSAGE
    )
    assert len(rsa_signature) == 256


def test_e3_ed25519_jwk_per_rfc_8037(materials: dict[Algorithm, bytes]) -> None:
    jwk = public_jwk(Algorithm.ED25519, materials[Algorithm.ED25519], KID)
    assert set(jwk) == {"kty", "crv", "alg", "x", "kid", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    assert (jwk["kid"], jwk["use"]) == (KID, "sig")
    assert len(_b64url_decode(jwk["x"])) == 32


def test_e3_ec_jwk_per_rfc_7518(materials: dict[Algorithm, bytes]) -> None:
    jwk = public_jwk(Algorithm.ECDSA_P256_SHA256, materials[Algorithm.ECDSA_P256_SHA256], KID)
    assert set(jwk) == {"kty", "crv", "alg", "x", "y", "kid", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("EC", "P-256", "ES256")
    assert (jwk["kid"], jwk["use"]) == (KID, "sig")
    assert len(jwk["x"]) == 43
    assert len(_b64url_decode(jwk["x"])) == 32
    assert len(_b64url_decode(jwk["y"])) == 32


@pytest.mark.parametrize(("scalar", "coordinate"), [(379, "x"), (43, "y")])
def test_e3_ec_jwk_coordinates_keep_leading_zero_bytes(scalar: int, coordinate: str) -> None:
    """RFC 7518 6.2.1.2: x and y are the full 32 octets even when they start with a zero byte.

    The private scalars are the smallest whose public x (379) or y (43) is below 2**248.
    """
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    material = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    jwk = public_jwk(Algorithm.ECDSA_P256_SHA256, material, KID)
    value = _b64url_decode(jwk[coordinate])
    assert len(value) == 32
    assert value[0] == 0
    rebuilt = _key_from_jwk(jwk)
    assert isinstance(rebuilt, ec.EllipticCurvePublicKey)
    assert rebuilt.public_numbers() == private.public_key().public_numbers()


def test_e3_rsa_jwk_per_rfc_7518(materials: dict[Algorithm, bytes]) -> None:
    jwk = public_jwk(
        Algorithm.RSA_2048_PKCS1_SHA256, materials[Algorithm.RSA_2048_PKCS1_SHA256], KID
    )
    assert set(jwk) == {"kty", "alg", "n", "e", "kid", "use"}
    assert (jwk["kty"], jwk["alg"]) == ("RSA", "RS256")
    assert (jwk["kid"], jwk["use"]) == (KID, "sig")
    assert jwk["e"] == "AQAB"
    modulus = _b64url_decode(jwk["n"])
    assert len(modulus) == 256
    assert modulus[0] != 0


def test_e3_encryption_key_cannot_sign_or_publish() -> None:
    material = new_material(Algorithm.AES_256_GCM)
    with pytest.raises(ValueError, match="not a signing algorithm") as signing:
        sign(Algorithm.AES_256_GCM, material, MESSAGE)
    with pytest.raises(ValueError, match="not a signing algorithm") as jwk:
        public_jwk(Algorithm.AES_256_GCM, material, KID)
    with pytest.raises(ValueError, match="not a signing algorithm") as pem:
        public_key_pem(Algorithm.AES_256_GCM, material)
    for caught in (signing, jwk, pem):
        assert material.hex() not in str(caught.value)


def test_e3_material_of_another_algorithm_refused(materials: dict[Algorithm, bytes]) -> None:
    with pytest.raises(ValueError, match="not a ECDSA_P256_SHA256 private key"):
        sign(Algorithm.ECDSA_P256_SHA256, materials[Algorithm.ED25519], MESSAGE)
    with pytest.raises(ValueError, match="not a ED25519 private key"):
        public_jwk(Algorithm.ED25519, materials[Algorithm.RSA_2048_PKCS1_SHA256], KID)
    with pytest.raises(ValueError, match="not a RSA_2048_PKCS1_SHA256 private key"):
        public_key_pem(Algorithm.RSA_2048_PKCS1_SHA256, b"not a key")
    with pytest.raises(ValueError, match="not a ED25519 private key"):
        sign(Algorithm.ED25519, materials[Algorithm.AES_256_GCM], MESSAGE)


def test_e3_plain_int_algorithm_accepted(materials: dict[Algorithm, bytes]) -> None:
    signature = sign(Algorithm(2), materials[Algorithm.ED25519], MESSAGE)
    public = _key_from_jwk(public_jwk(Algorithm(2), materials[Algorithm.ED25519], KID))
    _verify(public, signature, MESSAGE)
    assert len(new_material(Algorithm(1))) == 32
