"""Identity's transport: mutual TLS refusals, principal assertions, unimplemented RPCs, health,
and edge headers believed only from the gateway (E1, P1)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helios.identity.rpc.servicer import IdentityServicer
from helios.identity.store import tables
from helios.kernel.clients import call_metadata
from helios.kernel.principal import AssertionSigner, key_id_of, load_public_key
from helios.kernel.tls import CertFiles
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.identity.v1 import identity_pb2, identity_pb2_grpc

PASSWORD = "correct horse battery staple"

OutboxEvents = Callable[[], Awaitable[list[tuple[str, events_pb2.AuditEvent]]]]
TableRows = Callable[[Any], Awaitable[list[Any]]]


def _sign_up_request() -> identity_pb2.SignUpRequest:
    return identity_pb2.SignUpRequest(
        email=f"lin.{uuid.uuid4().hex[:10]}@example.com", password=PASSWORD
    )


async def _refused(stub: Any, **kwargs: Any) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.SignUp(_sign_up_request(), timeout=10, **kwargs)
    return refused.value


async def test_e1_client_without_certificate_is_refused(
    identity: Any, pki: dict[str, CertFiles], table_rows: TableRows
) -> None:
    """E1/P1: TLS that trusts our CA but presents no client certificate never reaches a handler."""
    credentials = grpc.ssl_channel_credentials(root_certificates=pki["gateway"].ca.read_bytes())
    stub = identity_pb2_grpc.IdentityServiceStub(identity.raw_channel(credentials))
    error = await _refused(stub)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert await table_rows(tables.users) == []


async def test_e1_client_certificate_from_another_ca_is_refused(
    identity: Any, pki: dict[str, CertFiles], table_rows: TableRows
) -> None:
    """E1/P1: a client certificate signed by a foreign CA is refused (the client itself trusts
    our CA, so the refusal is the server's)."""
    stranger = pki["stranger"]
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["gateway"].ca.read_bytes(),
        private_key=stranger.key.read_bytes(),
        certificate_chain=stranger.cert.read_bytes(),
    )
    stub = identity_pb2_grpc.IdentityServiceStub(identity.raw_channel(credentials))
    error = await _refused(stub)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert await table_rows(tables.users) == []


async def test_e1_stranger_channel_is_refused(identity: Any, pki: dict[str, CertFiles]) -> None:
    """E1: a peer of another PKI altogether (its own CA and certificate) cannot call."""
    stub = identity_pb2_grpc.IdentityServiceStub(identity.channel(pki["stranger"]))
    error = await _refused(stub)
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def _forged_by_unknown_key() -> principal_pb2.PrincipalAssertion:
    return AssertionSigner(Ed25519PrivateKey.generate()).sign(
        principal_pb2.Principal(actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id="mallory")
    )


def _forged_with_real_key_id(public_key_id: str) -> principal_pb2.PrincipalAssertion:
    genuine = _forged_by_unknown_key()
    claims = principal_pb2.PrincipalClaims.FromString(genuine.claims)
    claims.key_id = public_key_id
    body = claims.SerializeToString(deterministic=True)
    return principal_pb2.PrincipalAssertion(
        claims=body, signature=Ed25519PrivateKey.generate().sign(body)
    )


async def test_p1_forged_principal_assertion_is_unauthenticated(
    identity: Any, principal_keys: Any, table_rows: TableRows, outbox_events: OutboxEvents
) -> None:
    """P1: an assertion signed by another Ed25519 key (unknown key id, or our key id with a
    forged signature) or one that is not an assertion at all is refused before the handler."""
    stub = identity.stub()
    real_key_id = key_id_of(load_public_key(principal_keys[1]))
    cases = [
        (call_metadata(assertion=_forged_by_unknown_key()), "signed by an unknown key"),
        (call_metadata(assertion=_forged_with_real_key_id(real_key_id)), "signature is invalid"),
        ((("helios-principal-bin", b"\xff\x00garbage"),), "malformed principal assertion"),
    ]
    for metadata, message in cases:
        error = await _refused(stub, metadata=metadata)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert message in (error.details() or "")
    assert await table_rows(tables.users) == []
    assert await outbox_events() == []


def test_p1_every_rpc_of_the_contract_has_a_handler() -> None:
    """P1: no IdentityService RPC falls back to the generated base class (which would answer
    UNIMPLEMENTED): each is defined by one of the servicer's handler classes."""
    base = identity_pb2_grpc.IdentityServiceServicer
    missing = [
        method.name
        for method in identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].methods
        if getattr(IdentityServicer, method.name) is getattr(base, method.name)
    ]
    assert missing == []


async def test_p1_health_check_reports_serving(identity: Any, pki: dict[str, CertFiles]) -> None:
    """P1/P4: the gRPC health service answers SERVING for the server and for IdentityService."""
    health: Any = health_pb2_grpc.HealthStub(identity.channel(pki["devstack"]))
    for service in ("", "helios.proto.identity.v1.IdentityService"):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_p1_edge_headers_ignored_from_non_gateway_caller(
    identity: Any, outbox_events: OutboxEvents
) -> None:
    """P1: client ip and user agent headers from a caller that is not the edge are not believed;
    the same headers from the gateway are."""
    spoofed = call_metadata(client_ip="6.6.6.6", user_agent="spoofed-agent")
    from_client = await identity.stub("client").SignUp(
        _sign_up_request(), metadata=spoofed, timeout=10
    )
    from_gateway = await identity.stub("gateway").SignUp(
        _sign_up_request(), metadata=spoofed, timeout=10
    )

    events = {event.actor_id: event for _, event in await outbox_events()}
    assert set(events) == {from_client.user.user_id, from_gateway.user.user_id}
    assert events[from_client.user.user_id].ip == ""
    assert events[from_client.user.user_id].user_agent == ""
    assert events[from_gateway.user.user_id].ip == "6.6.6.6"
    assert events[from_gateway.user.user_id].user_agent == "spoofed-agent"
