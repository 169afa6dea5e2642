"""The shared lazy mTLS channel of the service adapters (E1): opened on first use, reused, and
opened again after close; calls over it reach a real mutual-TLS server."""

from __future__ import annotations

from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helios.kernel.clients import LazyChannel
from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.kernel.server import GrpcService
from helios.kernel.tls import CertFiles

pytestmark = pytest.mark.integration


async def test_e1_lazy_channel_opens_once_reaches_an_mtls_server_and_reopens_after_close(
    pki: dict[str, CertFiles], principal_keys: tuple[Path, Path]
) -> None:
    service = GrpcService(
        "authz", pki["authz"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    port = await service.start("127.0.0.1", 0)
    lazy = LazyChannel(f"localhost:{port}", pki["identity"])
    try:
        first = lazy.get()
        assert lazy.get() is first
        reply = await health_pb2_grpc.HealthStub(first).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await lazy.close()
        await lazy.close()
        second = lazy.get()
        assert second is not first
        reply = await health_pb2_grpc.HealthStub(second).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await lazy.close()
        await service.stop(0)
