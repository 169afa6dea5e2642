"""No secret reaches any log line of a whole multi-process run (E7, S1, A1)."""

from __future__ import annotations

import asyncio
import base64
import uuid

import httpx

from helios.devstack.stack import Stack
from helios.kernel.clients import secure_channel
from helios.proto.keyvault.v1 import keyvault_pb2 as kv
from helios.proto.keyvault.v1 import keyvault_pb2_grpc


def _forms(secret: bytes) -> list[str]:
    """The ways a byte secret could show up in a text log."""
    return [
        secret.hex(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    ]


async def _keyvault_journey(stack: Stack, org_id: str, plaintext: bytes) -> bytes:
    """Create a key, encrypt, make a data key, decrypt: as the identity service would."""
    async with secure_channel(
        f"localhost:{stack.ports['keyvault']}", stack.certs("identity")
    ) as ch:
        stub = keyvault_pb2_grpc.KeyvaultServiceStub(ch)
        key = await stub.CreateKey(  # type: ignore[attr-defined]
            kv.CreateKeyRequest(org_id=org_id, name="logs-test", purpose=1, algorithm=1)
        )
        context = kv.AadContext(table="t", row_id="1", column="c")
        sealed = await stub.Encrypt(  # type: ignore[attr-defined]
            kv.EncryptRequest(
                org_id=org_id, key_id=key.key.key_id, plaintext=plaintext, context=context
            )
        )
        opened = await stub.Decrypt(  # type: ignore[attr-defined]
            kv.DecryptRequest(org_id=org_id, ciphertext=sealed.ciphertext, context=context)
        )
        assert opened.plaintext == plaintext
        data_key = await stub.GenerateDataKey(  # type: ignore[attr-defined]
            kv.GenerateDataKeyRequest(org_id=org_id, key_id=key.key.key_id, context=context)
        )
        return bytes(data_key.plaintext_data_key)


def test_e7_no_password_token_plaintext_or_key_in_any_log_line(stack: Stack) -> None:
    """E7/S1/A1: after a journey through every process at DEBUG level (sign-up, sign-in, a
    session read, keyvault encryption and a data key), none of the password, session token,
    CSRF token, plaintext, data key, root key, principal signing key or cookie key appears in
    any process's log, in any encoding."""
    password = f"pw-{uuid.uuid4().hex}"
    email = f"logs-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=stack.gateway_url, timeout=15) as client:
        assert (
            client.post(
                "/api/auth/sign-up", json={"email": email, "password": password}
            ).status_code
            == 201
        )
        signed_in = client.post("/api/auth/sign-in", json={"email": email, "password": password})
        assert signed_in.status_code == 200
        token = signed_in.cookies["helios_session"]
        csrf = signed_in.cookies["helios_csrf"]
        assert (
            client.get(
                "/api/auth/session", headers={"cookie": f"helios_session={token}"}
            ).status_code
            == 200
        )
        assert (
            client.post(
                "/api/auth/sign-in", json={"email": email, "password": password + "x"}
            ).status_code
            == 401
        )
    plaintext = f"plaintext-{uuid.uuid4().hex}".encode()
    data_key = asyncio.run(_keyvault_journey(stack, str(uuid.uuid4()), plaintext))

    secrets = [password, password + "x", token, csrf, plaintext.decode()]
    secrets += _forms(data_key)
    secrets += _forms((stack.state / "keyvault" / "root.key").read_bytes())
    secrets += _forms((stack.state / "gateway-cookie.key").read_bytes())
    private_pem = (stack.state / "principal.key").read_text()
    secrets.append("".join(private_pem.strip().splitlines()[1:-1]))
    logs = "\n".join(
        path.read_text(errors="replace") for path in (stack.state / "logs").glob("*.log")
    )
    assert len(logs) > 1000  # the processes did log (at DEBUG) during the run
    leaked = [s[:12] + "..." for s in secrets if s in logs]
    assert leaked == []
