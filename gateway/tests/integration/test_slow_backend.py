"""The gateway's per-request deadline against a real slow gRPC backend (P2)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import grpc
import httpx

from helios.gateway.app import create_app
from helios.gateway.settings import GatewaySettings
from helios.gateway.upstream import Upstream
from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.kernel.runtime import cert_files
from helios.kernel.server import GrpcService
from helios.kernel.tls import CertFiles
from helios.proto.identity.v1 import identity_pb2, identity_pb2_grpc


class SlowIdentity(identity_pb2_grpc.IdentityServiceServicer):
    """A test backend (not a stand-in for identity's logic): VerifyEmail takes two seconds and
    records whether it ran to the end."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.completed = False

    async def VerifyEmail(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.VerifyEmailRequest, context: Any
    ) -> identity_pb2.VerifyEmailResponse:
        self.started.set()
        await asyncio.sleep(2)
        self.completed = True
        return identity_pb2.VerifyEmailResponse()


async def test_p2_slow_backend_answers_504_and_the_call_is_cancelled(
    pki: dict[str, CertFiles], principal_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """P2: a backend slower than the upstream deadline gets 504 DEADLINE_EXCEEDED as JSON, and
    the deadline travels with the call, so the backend's handler is cancelled, not finished."""
    backend = SlowIdentity()
    server = GrpcService(
        "identity", pki["identity"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    server.add_service(
        "helios.proto.identity.v1.IdentityService",
        lambda s: identity_pb2_grpc.add_IdentityServiceServicer_to_server(backend, s),  # type: ignore[arg-type]
    )
    port = await server.start("127.0.0.1", 0)
    key = tmp_path / "cookie.key"
    key.write_bytes(secrets.token_bytes(32))
    gateway = pki["gateway"]
    settings = GatewaySettings(
        tls_ca_file=gateway.ca,
        tls_cert_file=gateway.cert,
        tls_key_file=gateway.key,
        principal_public_key_file=principal_keys[1],
        cookie_key_file=key,
        identity_target=f"localhost:{port}",
        upstream_timeout_seconds=0.5,
    )
    app = create_app(
        settings,
        lambda: Upstream.connect(cert_files(settings), settings.targets(), 0.5),
    )
    app.state.upstream = Upstream.connect(cert_files(settings), settings.targets(), 0.5)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as client:
            response = await client.post(
                "/api/v1/identity/email:verify", json={"token": "anything"}
            )
        assert response.status_code == 504
        assert response.json()["error"]["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.name
        assert backend.started.is_set()
        await asyncio.sleep(2.2)
        assert backend.completed is False
    finally:
        await app.state.upstream.close()
        await server.stop(0)
