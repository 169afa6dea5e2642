"""DKIM through keyvault (E3) over mTLS against real PostgreSQL: an org's DKIM key (RSA-2048 and
Ed25519) stays in keyvault, its TXT value comes from GetPublicKey, outbound mail is signed through
Sign, dkimpy verifies it, and nobody outside the org signs with the key."""

from __future__ import annotations

import uuid
from typing import Any

import dkim
import grpc
import pytest

from helios.kernel.dkim import DkimSigner, dkim_dns_name, dkim_txt_record, keyvault_signer
from helios.kernel.errors import NotFoundError, PermissionDeniedError
from helios.proto.keyvault.v1 import keyvault_pb2 as kv

ORG_A, ORG_B = str(uuid.uuid4()), str(uuid.uuid4())
DOMAIN, SELECTOR = "org-a.example.com", "helios1"
MESSAGE = (
    b"From: Billing <billing@org-a.example.com>\r\n"
    b"To: customer@example.net\r\n"
    b"Subject: Your invoice\r\n"
    b"Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n"
    b"Message-ID: <invoice-7@org-a.example.com>\r\n"
    b"\r\n"
    b"Amount due: 120.00 CHF\r\n"
    b"IBAN: CH93 0076 2011 6238 5295 7\r\n"
)
ALGORITHMS = [
    pytest.param(kv.KEY_ALGORITHM_RSA_2048_PKCS1_SHA256, "rsa-sha256", id="rsa-sha256"),
    pytest.param(kv.KEY_ALGORITHM_ED25519, "ed25519-sha256", id="ed25519-sha256"),
]


async def _dkim_key(keyvault: Any, algorithm: kv.KeyAlgorithm.ValueType) -> tuple[str, str]:
    """Org A's user creates a DKIM signing key; (key id, the TXT value to publish)."""
    stub, meta = keyvault.as_user(ORG_A)
    key = (
        await stub.CreateKey(
            kv.CreateKeyRequest(name="dkim", purpose=kv.KEY_PURPOSE_SIGNING, algorithm=algorithm),
            metadata=meta,
        )
    ).key
    jwks = await stub.GetPublicKey(kv.GetPublicKeyRequest(key_id=key.key_id), metadata=meta)
    (jwk,) = jwks.keys
    txt = dkim_txt_record({field.name: value for field, value in jwk.ListFields()})
    return key.key_id, txt


def _dns(txt: str) -> Any:
    """dkimpy's dnsfunc: only org A's record name has the published TXT value."""
    expected = f"{dkim_dns_name(SELECTOR, DOMAIN)}.".encode()
    return lambda name, timeout=5: txt.encode() if name == expected else b""


@pytest.mark.parametrize(("algorithm", "dkim_algorithm"), ALGORITHMS)
async def test_e3_mail_signed_through_keyvault_verifies_with_dkimpy(
    keyvault: Any, algorithm: kv.KeyAlgorithm.ValueType, dkim_algorithm: Any
) -> None:
    """E3: a message signed for org A through keyvault Sign (called by the identity service with
    org A) verifies with dkimpy against the TXT value from GetPublicKey; changing one body byte
    or the Subject makes it fail; the TXT of another org A key does not verify it."""
    key_id, txt = await _dkim_key(keyvault, algorithm)
    assert txt.startswith(
        "v=DKIM1; k=rsa; p=" if dkim_algorithm == "rsa-sha256" else "v=DKIM1; k=ed25519; p="
    )
    sign = keyvault_signer(keyvault.as_service("identity"), ORG_A, key_id)
    signed = await DkimSigner(sign, dkim_algorithm, DOMAIN, SELECTOR).sign_message(MESSAGE)
    assert signed.endswith(MESSAGE)

    assert dkim.verify(signed, dnsfunc=_dns(txt)) is True
    assert dkim.verify(signed.replace(b"120.00 CHF", b"920.00 CHF"), dnsfunc=_dns(txt)) is False
    assert dkim.verify(signed.replace(b"Your invoice", b"Your Invoice"), dnsfunc=_dns(txt)) is False

    stub, meta = keyvault.as_user(ORG_A)
    other = (
        await stub.CreateKey(
            kv.CreateKeyRequest(
                name="dkim-next", purpose=kv.KEY_PURPOSE_SIGNING, algorithm=algorithm
            ),
            metadata=meta,
        )
    ).key
    other_jwk = (
        await stub.GetPublicKey(kv.GetPublicKeyRequest(key_id=other.key_id), metadata=meta)
    ).keys[0]
    other_txt = dkim_txt_record({f.name: v for f, v in other_jwk.ListFields()})
    assert dkim.verify(signed, dnsfunc=_dns(other_txt)) is False


@pytest.mark.parametrize(("algorithm", "dkim_algorithm"), ALGORITHMS)
async def test_e3_another_org_cannot_sign_with_org_a_dkim_key(
    keyvault: Any, algorithm: kv.KeyAlgorithm.ValueType, dkim_algorithm: Any
) -> None:
    """E3: org B's user cannot sign with org A's DKIM key, neither naming org A
    (PERMISSION_DENIED) nor in its own org (NOT_FOUND); a service acting for org B does not
    find it either. Through DkimSigner the refusals are domain errors and nothing is signed."""
    key_id, _ = await _dkim_key(keyvault, algorithm)
    stub_b, meta_b = keyvault.as_user(ORG_B)

    for org in (ORG_A, ""):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub_b.Sign(
                kv.SignRequest(org_id=org, key_id=key_id, message=b"data"), metadata=meta_b
            )
        assert refused.value.code() in (
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.PERMISSION_DENIED,
        )

    as_b_naming_a = keyvault_signer(stub_b, ORG_A, key_id, meta_b)
    with pytest.raises(PermissionDeniedError):
        await DkimSigner(as_b_naming_a, dkim_algorithm, DOMAIN, SELECTOR).sign_message(MESSAGE)
    as_b = keyvault_signer(stub_b, "", key_id, meta_b)
    with pytest.raises(NotFoundError):
        await DkimSigner(as_b, dkim_algorithm, DOMAIN, SELECTOR).sign_message(MESSAGE)
    service_for_b = keyvault_signer(keyvault.as_service("identity"), ORG_B, key_id)
    with pytest.raises(NotFoundError):
        await DkimSigner(service_for_b, dkim_algorithm, DOMAIN, SELECTOR).sign_message(MESSAGE)
