"""The client's city and country reach a service's CallContext from the edge only (S4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.context import CallContext, current_call
from helios.kernel.interceptors import CITY_KEY, COUNTRY_KEY
from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.kernel.server import GrpcService
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc


class ContextProbe(authz_pb2_grpc.AuthzServiceServicer):
    """Any unary RPC will do (the kernel may not depend on a service): records the context the
    interceptor built for each call."""

    def __init__(self) -> None:
        self.seen: list[CallContext] = []

    async def RegisterPermissions(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.RegisterPermissionsRequest, context: Any
    ) -> authz_pb2.RegisterPermissionsResponse:
        self.seen.append(current_call())
        return authz_pb2.RegisterPermissionsResponse()


@pytest.fixture
async def probe(
    pki: dict[str, CertFiles], principal_keys: tuple[Path, Path]
) -> AsyncIterator[tuple[ContextProbe, int]]:
    found = ContextProbe()
    server = GrpcService(
        "authz", pki["authz"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    server.add_service(
        authz_pb2.DESCRIPTOR.services_by_name["AuthzService"].full_name,
        lambda s: authz_pb2_grpc.add_AuthzServiceServicer_to_server(found, s),
    )
    port = await server.start("127.0.0.1", 0)
    yield found, port
    await server.stop(0)


async def _call(port: int, certs: CertFiles, metadata: Any) -> None:
    async with secure_channel(f"localhost:{port}", certs) as channel:
        stub = authz_pb2_grpc.AuthzServiceStub(channel)
        await stub.RegisterPermissions(
            authz_pb2.RegisterPermissionsRequest(), metadata=metadata, timeout=10
        )


async def test_s4_edge_call_carries_city_and_country(
    probe: tuple[ContextProbe, int], pki: dict[str, CertFiles]
) -> None:
    found, port = probe
    metadata = call_metadata(client_ip="203.0.113.9", city="São Paulo", country="br")
    await _call(port, pki["gateway"], metadata)
    (ctx,) = found.seen
    assert (ctx.ip, ctx.city, ctx.country) == ("203.0.113.9", "São Paulo", "BR")


async def test_s4_geo_from_a_service_that_is_not_the_edge_is_ignored(
    probe: tuple[ContextProbe, int], pki: dict[str, CertFiles]
) -> None:
    found, port = probe
    metadata = call_metadata(client_ip="203.0.113.9", city="Paris", country="FR")
    await _call(port, pki["ai-broker"], metadata)
    (ctx,) = found.seen
    assert (ctx.ip, ctx.city, ctx.country) == ("", "", "")


async def test_s4_malformed_geo_from_the_edge_becomes_empty(
    probe: tuple[ContextProbe, int], pki: dict[str, CertFiles]
) -> None:
    found, port = probe
    metadata = ((CITY_KEY, "Par%0Ais"), (COUNTRY_KEY, "XX"))
    await _call(port, pki["gateway"], metadata)
    (ctx,) = found.seen
    assert (ctx.city, ctx.country) == ("", "")
