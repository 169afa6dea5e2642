"""Registering a service's permission catalog with authz at start over mTLS (Z2)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import grpc
import pytest

from helios.kernel.context import current_call
from helios.kernel.permission_catalog import registration_task
from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.kernel.server import GrpcService
from helios.kernel.testing.servers import free_port
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc

DEFINITIONS = [
    authz_pb2.PermissionDefinition(
        key="demo.item.read", description="See items", allowed_scopes=[authz_pb2.SCOPE_OWN]
    ),
    authz_pb2.PermissionDefinition(key="demo.item.delete", description="Delete", dangerous=True),
]


class FakeAuthz(authz_pb2_grpc.AuthzServiceServicer):
    """Stands in for authz's RegisterPermissions (the kernel may not depend on the authz
    service): records who called with what, and refuses with `refusal` when set."""

    def __init__(self, refusal: grpc.StatusCode | None = None) -> None:
        self.refusal = refusal
        self.calls: list[tuple[str, authz_pb2.RegisterPermissionsRequest]] = []

    async def RegisterPermissions(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.RegisterPermissionsRequest, context: Any
    ) -> authz_pb2.RegisterPermissionsResponse:
        self.calls.append((current_call().caller, request))
        if self.refusal is not None:
            await context.abort(self.refusal, "permission demo.item.read is already registered")
        return authz_pb2.RegisterPermissionsResponse(
            added_keys=[p.key for p in request.permissions], revision=1
        )


async def _serve(fake: FakeAuthz, certs: CertFiles, public_key: Path, port: int) -> GrpcService:
    server = GrpcService("authz", certs, AssertionVerifier([load_public_key(public_key)]))
    server.add_service(
        "helios.proto.authz.v1.AuthzService",
        lambda s: authz_pb2_grpc.add_AuthzServiceServicer_to_server(fake, s),
    )
    await server.start("127.0.0.1", port)
    return server


async def test_z2_registration_retries_until_authz_answers_then_ends(
    pki: dict[str, CertFiles], principal_keys: tuple[Path, Path]
) -> None:
    port = free_port()
    task = registration_task("identity", DEFINITIONS, f"localhost:{port}", pki["identity"])
    running = asyncio.create_task(task(asyncio.Event()))
    await asyncio.sleep(0.8)  # authz is not up yet: the first attempts fail
    assert not running.done()
    fake = FakeAuthz()  # type: ignore[abstract]  # other RPCs answer UNIMPLEMENTED
    server = await _serve(fake, pki["authz"], principal_keys[1], port)
    try:
        await asyncio.wait_for(running, 15)
    finally:
        await server.stop(0)
    [(caller, request)] = fake.calls
    assert caller == "identity"
    assert request.service == "identity"
    assert list(request.permissions) == DEFINITIONS


async def test_z2_a_key_registered_differently_is_logged_as_an_error_and_not_retried(
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeAuthz(refusal=grpc.StatusCode.ALREADY_EXISTS)  # type: ignore[abstract]
    server = await _serve(fake, pki["authz"], principal_keys[1], 0)
    task = registration_task("audit", DEFINITIONS, f"localhost:{server.port}", pki["audit"])
    try:
        with caplog.at_level(logging.ERROR, logger="helios.kernel.permission_catalog"):
            await asyncio.wait_for(task(asyncio.Event()), 10)
    finally:
        await server.stop(0)
    assert len(fake.calls) == 1
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "deployment bug" in record.getMessage()
    assert record.__dict__["grpc_code"] == "ALREADY_EXISTS"


async def test_z2_registration_stops_with_the_process_while_authz_is_down(
    pki: dict[str, CertFiles],
) -> None:
    stop = asyncio.Event()
    task = registration_task("keyvault", DEFINITIONS, f"localhost:{free_port()}", pki["keyvault"])
    running = asyncio.create_task(task(stop))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(running, 5)
