"""Keyvault over gRPC against real PostgreSQL: envelope encryption, rotation, rewrap,
inventory, crypto-shredding, signing (E3, E4, E6, E7)."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.keyvault.seal import LocalSeal
from helios.proto.audit.v1 import events_pb2
from helios.proto.keyvault.v1 import keyvault_pb2 as kv

ORG_A, ORG_B = str(uuid.uuid4()), str(uuid.uuid4())
CONTEXT = kv.AadContext(table="contacts", row_id="42", column="phone")
SECRET = b"+41 79 555 01 02 (a very private number)"


async def _key(stub: Any, metadata: Any, name: str = "row-secrets") -> kv.Key:
    reply = await stub.CreateKey(
        kv.CreateKeyRequest(
            name=name,
            purpose=kv.KEY_PURPOSE_ENCRYPTION,
            algorithm=kv.KEY_ALGORITHM_AES_256_GCM,
        ),
        metadata=metadata,
    )
    return reply.key


async def _refused(call: Any, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == code, refused.value.details()
    return refused.value.details() or ""


async def test_e4_round_trip_and_every_tampering_refused_cleanly(
    keyvault: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """E4: a value encrypts and decrypts in its org and context; wrong AAD, another org, a
    flipped byte anywhere and a truncated ciphertext get INVALID_ARGUMENT and never plaintext.
    E7: no plaintext or key material reaches any log line of the run."""
    caplog.set_level(logging.DEBUG)
    stub, meta = keyvault.as_user(ORG_A)
    key = await _key(stub, meta)
    sealed = await stub.Encrypt(
        kv.EncryptRequest(key_id=key.key_id, plaintext=SECRET, context=CONTEXT), metadata=meta
    )
    assert sealed.key_version == 1
    assert SECRET not in sealed.ciphertext
    opened = await stub.Decrypt(
        kv.DecryptRequest(ciphertext=sealed.ciphertext, context=CONTEXT), metadata=meta
    )
    assert opened.plaintext == SECRET

    other_row = kv.AadContext(table="contacts", row_id="43", column="phone")
    await _refused(
        stub.Decrypt(
            kv.DecryptRequest(ciphertext=sealed.ciphertext, context=other_row), metadata=meta
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    stub_b, meta_b = keyvault.as_user(ORG_B)
    await _refused(
        stub_b.Decrypt(
            kv.DecryptRequest(ciphertext=sealed.ciphertext, context=CONTEXT), metadata=meta_b
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    blob = sealed.ciphertext
    for position in (0, 5, 20, len(blob) // 2, len(blob) - 1):
        flipped = bytearray(blob)
        flipped[position] ^= 0x01
        await _refused(
            stub.Decrypt(
                kv.DecryptRequest(ciphertext=bytes(flipped), context=CONTEXT), metadata=meta
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    for cut in (len(blob) - 1, len(blob) - 16, 10, 0):
        await _refused(
            stub.Decrypt(kv.DecryptRequest(ciphertext=blob[:cut], context=CONTEXT), metadata=meta),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert SECRET.decode() not in logged
    assert (keyvault.seal_dir / "root.key").read_bytes().hex() not in logged


async def test_e6_rotate_rewrap_min_version_and_inventory(keyvault: Any) -> None:
    """E6: after a rotation old ciphertexts still decrypt and new ones use v2; the minimum
    decryption version cannot rise while v1 protects live data; Rewrap moves data to v2; then
    v1 is refused. KeyInventory counts match at every step."""
    stub, meta = keyvault.as_user(ORG_A)
    key = await _key(stub, meta)

    async def inventory() -> dict[int, tuple[int, int]]:
        reply = await stub.KeyInventory(kv.KeyInventoryRequest(key_id=key.key_id), metadata=meta)
        return {v.version: (v.live_ciphertexts, v.live_data_keys) for v in reply.versions}

    old = [
        (
            await stub.Encrypt(
                kv.EncryptRequest(key_id=key.key_id, plaintext=b"v1-%d" % i, context=CONTEXT),
                metadata=meta,
            )
        ).ciphertext
        for i in range(3)
    ]
    data_key = await stub.GenerateDataKey(
        kv.GenerateDataKeyRequest(key_id=key.key_id, context=CONTEXT), metadata=meta
    )
    assert len(data_key.plaintext_data_key) == 32
    assert await inventory() == {1: (3, 1)}

    rotated = await stub.RotateKey(kv.RotateKeyRequest(key_id=key.key_id), metadata=meta)
    assert rotated.new_version == 2
    new = await stub.Encrypt(
        kv.EncryptRequest(key_id=key.key_id, plaintext=b"v2", context=CONTEXT), metadata=meta
    )
    assert new.key_version == 2
    for i, blob in enumerate(old):
        reply = await stub.Decrypt(
            kv.DecryptRequest(ciphertext=blob, context=CONTEXT), metadata=meta
        )
        assert (reply.plaintext, reply.key_version) == (b"v1-%d" % i, 1)
    assert await inventory() == {1: (3, 1), 2: (1, 0)}

    details = await _refused(
        stub.SetMinDecryptionVersion(
            kv.SetMinDecryptionVersionRequest(key_id=key.key_id, min_decryption_version=2),
            metadata=meta,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "rewrap" in details

    moved = []
    for blob in old:
        reply = await stub.Rewrap(kv.RewrapRequest(ciphertext=blob, context=CONTEXT), metadata=meta)
        assert (reply.source_key_version, reply.key_version) == (1, 2)
        moved.append(reply.ciphertext)
    rewrapped_key = await stub.Rewrap(
        kv.RewrapRequest(ciphertext=data_key.wrapped_data_key, context=CONTEXT), metadata=meta
    )
    assert await inventory() == {1: (0, 0), 2: (4, 1)}

    await stub.SetMinDecryptionVersion(
        kv.SetMinDecryptionVersionRequest(key_id=key.key_id, min_decryption_version=2),
        metadata=meta,
    )
    await _refused(
        stub.Decrypt(kv.DecryptRequest(ciphertext=old[0], context=CONTEXT), metadata=meta),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    reply = await stub.Decrypt(
        kv.DecryptRequest(ciphertext=moved[0], context=CONTEXT), metadata=meta
    )
    assert reply.plaintext == b"v1-0"
    unwrapped = await stub.DecryptDataKey(
        kv.DecryptDataKeyRequest(wrapped_data_key=rewrapped_key.ciphertext, context=CONTEXT),
        metadata=meta,
    )
    assert unwrapped.plaintext_data_key == data_key.plaintext_data_key
    await _refused(  # a data key is not a ciphertext, and the other way round
        stub.Decrypt(
            kv.DecryptRequest(ciphertext=rewrapped_key.ciphertext, context=CONTEXT), metadata=meta
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_e4_destroy_key_erases_material_and_nothing_decrypts(
    keyvault: Any, db_connection: AsyncConnection
) -> None:
    """E4: after DestroyKey every ciphertext under it fails, the sealed material columns are
    NULL in the database, and the destruction is audited without any material."""
    stub, meta = keyvault.as_user(ORG_A)
    key = await _key(stub, meta)
    await stub.RotateKey(kv.RotateKeyRequest(key_id=key.key_id), metadata=meta)
    sealed = await stub.Encrypt(
        kv.EncryptRequest(key_id=key.key_id, plaintext=SECRET, context=CONTEXT), metadata=meta
    )
    destroyed = await stub.DestroyKey(kv.DestroyKeyRequest(key_id=key.key_id), metadata=meta)
    assert destroyed.key.state == kv.KEY_STATE_DESTROYED
    await _refused(
        stub.Decrypt(
            kv.DecryptRequest(ciphertext=sealed.ciphertext, context=CONTEXT), metadata=meta
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    rows = (
        await db_connection.execute(
            text("SELECT sealed_material FROM keyvault.key_versions WHERE key_id = :k"),
            {"k": uuid.UUID(key.key_id)},
        )
    ).all()
    assert len(rows) == 2
    assert all(row.sealed_material is None for row in rows)
    payloads = (
        (await db_connection.execute(text("SELECT payload FROM keyvault.outbox"))).scalars().all()
    )
    actions = [events_pb2.AuditEvent.FromString(p).action for p in payloads]
    assert actions.count("keyvault.key.destroy") == 1
    assert all(SECRET not in p for p in payloads)


async def test_e4_destroyed_key_stays_unreadable_after_a_restart(
    keyvault: Any, start_again: Any
) -> None:
    """E4: crypto-shredding survives a restart: a fresh keyvault on the same root key and
    database still refuses the destroyed key's ciphertexts."""
    stub, meta = keyvault.as_user(ORG_A)
    key = await _key(stub, meta)
    sealed = await stub.Encrypt(
        kv.EncryptRequest(key_id=key.key_id, plaintext=SECRET, context=CONTEXT), metadata=meta
    )
    await stub.DestroyKey(kv.DestroyKeyRequest(key_id=key.key_id), metadata=meta)
    second = await start_again()
    stub2, meta2 = second.as_user(ORG_A)
    await _refused(
        stub2.Decrypt(
            kv.DecryptRequest(ciphertext=sealed.ciphertext, context=CONTEXT), metadata=meta2
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


async def test_e4_data_survives_a_restart_with_the_same_root_key(
    keyvault: Any, start_again: Any
) -> None:
    """E4: a second keyvault opened on the same root key file and database decrypts what the
    first one encrypted."""
    stub, meta = keyvault.as_user(ORG_A)
    key = await _key(stub, meta)
    sealed = await stub.Encrypt(
        kv.EncryptRequest(key_id=key.key_id, plaintext=SECRET, context=CONTEXT), metadata=meta
    )
    second = await start_again()
    stub2, meta2 = second.as_user(ORG_A)
    reply = await stub2.Decrypt(
        kv.DecryptRequest(ciphertext=sealed.ciphertext, context=CONTEXT), metadata=meta2
    )
    assert reply.plaintext == SECRET


async def test_e3_ed25519_signature_verifies_with_the_published_jwk(keyvault: Any) -> None:
    """E3: a signing key signs; the JWK from GetPublicKey verifies the signature and refuses a
    changed message."""
    stub, meta = keyvault.as_user(ORG_A)
    key = (
        await stub.CreateKey(
            kv.CreateKeyRequest(
                name="checkpoints",
                purpose=kv.KEY_PURPOSE_SIGNING,
                algorithm=kv.KEY_ALGORITHM_ED25519,
            ),
            metadata=meta,
        )
    ).key
    signed = await stub.Sign(kv.SignRequest(key_id=key.key_id, message=b"tree head"), metadata=meta)
    jwks = await stub.GetPublicKey(kv.GetPublicKeyRequest(key_id=key.key_id), metadata=meta)
    jwk = jwks.keys[0]
    assert (jwk.kty, jwk.crv, jwk.alg, jwk.kid) == ("OKP", "Ed25519", "EdDSA", signed.kid)
    public = Ed25519PublicKey.from_public_bytes(
        base64.urlsafe_b64decode(jwk.x + "=" * (-len(jwk.x) % 4))
    )
    public.verify(signed.signature, b"tree head")
    with pytest.raises(Exception):  # noqa: B017, PT011 - cryptography's InvalidSignature
        public.verify(signed.signature, b"tree head!")
    await _refused(
        stub.Encrypt(kv.EncryptRequest(key_id=key.key_id, plaintext=b"x"), metadata=meta),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


async def test_e4_other_orgs_and_unknown_callers_are_refused(keyvault: Any) -> None:
    """E4: a user cannot name another org, cannot see another org's key, and a caller that is
    neither a user nor a Helios service gets PERMISSION_DENIED."""
    stub, meta = keyvault.as_user(ORG_A)
    key = await _key(stub, meta)
    await _refused(
        stub.CreateKey(
            kv.CreateKeyRequest(org_id=ORG_B, name="x", purpose=1, algorithm=1), metadata=meta
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    stub_b, meta_b = keyvault.as_user(ORG_B)
    await _refused(
        stub_b.GetKey(kv.GetKeyRequest(key_id=key.key_id), metadata=meta_b),
        grpc.StatusCode.NOT_FOUND,
    )
    stranger = keyvault.as_service("client")
    await _refused(
        stranger.GetKey(kv.GetKeyRequest(org_id=ORG_A, key_id=key.key_id)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    service = keyvault.as_service("audit")
    reply = await service.GetKey(kv.GetKeyRequest(org_id=ORG_A, key_id=key.key_id))
    assert reply.key.name == "row-secrets"
    await _refused(
        stub.CreateKey(
            kv.CreateKeyRequest(name="row-secrets", purpose=1, algorithm=1), metadata=meta
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    await _refused(
        stub.CreateKey(kv.CreateKeyRequest(name="bad", purpose=1, algorithm=2), metadata=meta),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


def test_e7_wrong_passphrase_stops_keyvault_with_a_clear_message(
    tmp_path: Path, database_url: str, pki: dict[str, Any], principal_keys: tuple[Path, Path]
) -> None:
    """E7: a keyvault whose seal was made with one passphrase refuses to start with another
    (exit status 2), says why, and never echoes the passphrase."""
    certs = pki["keyvault"]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HELIOS_")},
        "HELIOS_TLS_CA_FILE": str(certs.ca),
        "HELIOS_TLS_CERT_FILE": str(certs.cert),
        "HELIOS_TLS_KEY_FILE": str(certs.key),
        "HELIOS_PRINCIPAL_PUBLIC_KEY_FILE": str(principal_keys[1]),
        "HELIOS_DATABASE_URL": database_url,
        "HELIOS_GRPC_PORT": "0",
        "HELIOS_SEAL_STATE_DIR": str(tmp_path / "seal"),
        "HELIOS_SEAL_ARGON2_TIME_COST": "1",
        "HELIOS_SEAL_ARGON2_MEMORY_KIB": "8192",
        "HELIOS_SEAL_ARGON2_PARALLELISM": "1",
    }
    LocalSeal.from_passphrase(
        "the right passphrase", tmp_path / "seal", time_cost=1, memory_kib=8192, parallelism=1
    )
    wrong = subprocess.run(
        [sys.executable, "-m", "helios.keyvault"],
        env={**env, "HELIOS_SEAL_PASSPHRASE": "a wrong passphrase"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode == 2
    assert "passphrase does not open this keyvault" in wrong.stderr
    assert "a wrong passphrase" not in wrong.stderr + wrong.stdout


@pytest.mark.parametrize(
    ("algorithm", "name"),
    [
        (kv.KEY_ALGORITHM_ECDSA_P256_SHA256, "es256"),
        (kv.KEY_ALGORITHM_RSA_2048_PKCS1_SHA256, "rs256"),
    ],
)
async def test_e3_precomputed_digest_signature_verifies_like_a_message_signature(
    keyvault: Any, algorithm: int, name: str
) -> None:
    """E3: ECDSA and RSA keys sign a precomputed SHA-256 digest; the signature verifies over the
    original message with the published public key. Ed25519 refuses digests (pure EdDSA), and
    a digest of the wrong size is refused."""
    stub, meta = keyvault.as_user(ORG_A)
    key = (
        await stub.CreateKey(
            kv.CreateKeyRequest(name=name, purpose=kv.KEY_PURPOSE_SIGNING, algorithm=algorithm),
            metadata=meta,
        )
    ).key
    message = b"checkpoint 42"
    signed = await stub.Sign(
        kv.SignRequest(key_id=key.key_id, digest_sha256=hashlib.sha256(message).digest()),
        metadata=meta,
    )
    jwk = (await stub.GetPublicKey(kv.GetPublicKeyRequest(key_id=key.key_id), metadata=meta)).keys[
        0
    ]
    verify_with_jwk(jwk, signed.signature, message)
    with pytest.raises(InvalidSignature):
        verify_with_jwk(jwk, signed.signature, message + b"!")
    await _refused(
        stub.Sign(kv.SignRequest(key_id=key.key_id, digest_sha256=b"short"), metadata=meta),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    ed = (
        await stub.CreateKey(
            kv.CreateKeyRequest(
                name=f"{name}-ed",
                purpose=kv.KEY_PURPOSE_SIGNING,
                algorithm=kv.KEY_ALGORITHM_ED25519,
            ),
            metadata=meta,
        )
    ).key
    await _refused(
        stub.Sign(
            kv.SignRequest(key_id=ed.key_id, digest_sha256=hashlib.sha256(message).digest()),
            metadata=meta,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


def verify_with_jwk(jwk: kv.Jwk, signature: bytes, message: bytes) -> None:
    """Verify with the public key rebuilt from the JWK's numbers (raises InvalidSignature)."""

    def number(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    if jwk.kty == "EC":
        public_ec = ec.EllipticCurvePublicNumbers(number(jwk.x), number(jwk.y), ec.SECP256R1())
        public_ec.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
    else:
        public_rsa = rsa.RSAPublicNumbers(number(jwk.e), number(jwk.n)).public_key()
        public_rsa.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
