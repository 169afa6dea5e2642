"""Audit's integration fixtures: the migrated schema, the service over the test's rolled-back
connection, an in-process mTLS server, event builders and a principal signer."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.audit.rpc.servicer import AuditServicer
from helios.audit.service import AuditService
from helios.audit.store import tables
from helios.audit.store.postgres import PostgresAuditLog
from helios.kernel.clients import secure_channel
from helios.kernel.migrations import migrate
from helios.kernel.principal import (
    AssertionSigner,
    AssertionVerifier,
    load_private_key,
    load_public_key,
)
from helios.kernel.server import GrpcService
from helios.kernel.tls import CertFiles
from helios.proto.audit.v1 import audit_pb2, audit_pb2_grpc, events_pb2
from helios.proto.common.v1 import principal_pb2

AUDIT_SERVICE = audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name


@pytest.fixture(scope="session")
def audit_schema(database_url: str) -> str:
    """Migrate the audit schema once per test session; returns the database URL."""
    location = Path(str(files("helios.audit.store") / "migrations"))
    migrate(database_url, tables.SCHEMA, location, tables.metadata)
    return database_url


@pytest.fixture
def audit_service(audit_schema: str, db_session: async_sessionmaker[AsyncSession]) -> AuditService:
    """The audit use cases over the test's rolled-back sessions."""
    return AuditService(PostgresAuditLog(db_session))


@pytest.fixture
def make_event() -> Callable[..., events_pb2.AuditEvent]:
    """Build a well-formed AuditEvent with every L1 field set; keyword arguments override."""

    def build(**overrides: Any) -> events_pb2.AuditEvent:
        occurred = overrides.pop("occurred_at", dt.datetime(2026, 2, 3, 4, 5, 6, tzinfo=dt.UTC))
        diff = overrides.pop("diff", {"display_name": {"from": "Ada", "to": "Ada L."}})
        fields: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "org_id": str(uuid.uuid4()),
            "actor_type": principal_pb2.ACTOR_TYPE_USER,
            "actor_id": str(uuid.uuid4()),
            "session_id": str(uuid.uuid4()),
            "impersonator_id": "",
            "action": "identity.user.update",
            "resource_type": "identity.user",
            "resource_id": str(uuid.uuid4()),
            "input_hash": "a1" * 32,
            "output_hash": "b2" * 32,
            "ip": "203.0.113.7",
            "user_agent": "itest-browser/1.0",
            "decision_id": str(uuid.uuid4()),
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "producer": "identity",
            "outcome": events_pb2.AUDIT_OUTCOME_SUCCESS,
        }
        fields.update(overrides)
        event = events_pb2.AuditEvent(**fields)
        event.occurred_at.FromDatetime(occurred)
        event.diff.update(diff)
        return event

    return build


@pytest.fixture
def signer(principal_keys: tuple[Path, Path]) -> AssertionSigner:
    """Signs principal assertions with the key the audit server trusts (identity's role)."""
    return AssertionSigner(load_private_key(principal_keys[0]))


@dataclass
class AuditServer:
    """A running audit server and a gateway channel to it."""

    port: int
    stub: audit_pb2_grpc.AuditServiceStub
    channel: grpc.aio.Channel


@pytest.fixture
async def audit_server(
    audit_service: AuditService,
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
) -> AsyncIterator[AuditServer]:
    """The audit gRPC server (wired like wiring.py, without the stream consumer) on an ephemeral
    port with mutual TLS, called through a channel holding the gateway's certificate."""
    # RPCs the servicer does not define answer UNIMPLEMENTED (the generated base class).
    servicer = AuditServicer(audit_service)  # type: ignore[abstract]
    grpc_service = GrpcService(
        "audit", pki["audit"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    grpc_service.add_service(
        AUDIT_SERVICE,
        lambda server: audit_pb2_grpc.add_AuditServiceServicer_to_server(servicer, server),
    )
    port = await grpc_service.start("127.0.0.1", 0)
    channel = secure_channel(f"localhost:{port}", pki["gateway"])
    try:
        yield AuditServer(port=port, stub=audit_pb2_grpc.AuditServiceStub(channel), channel=channel)
    finally:
        await channel.close()
        await grpc_service.stop(0)
