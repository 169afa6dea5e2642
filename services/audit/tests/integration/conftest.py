"""Audit's integration fixtures: the migrated schema, the service over the test's rolled-back
connection, an in-process mTLS server, event builders and a principal signer; a real in-process
keyvault, its checkpoint signer and the audit server with checkpoints and exports wired."""

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

from helios.audit.exporting import ExportService
from helios.audit.retention import RetentionService
from helios.audit.rpc.servicer import AuditServicer
from helios.audit.sealing import CheckpointService
from helios.audit.service import AuditService
from helios.audit.store import tables
from helios.audit.store.keyvault_signer import KeyvaultSigner
from helios.audit.store.postgres import PostgresAuditLog
from helios.audit.store.reader import PgLogReader
from helios.audit.store.retention import postgres_retention
from helios.audit.store.tree import PgTreeStore
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.migrations import migrate
from helios.kernel.principal import (
    AssertionSigner,
    AssertionVerifier,
    load_private_key,
    load_public_key,
)
from helios.kernel.server import GrpcService
from helios.kernel.tls import CertFiles
from helios.keyvault.attachments import AttachmentService
from helios.keyvault.object_store import LocalObjectStore
from helios.keyvault.rpc.servicer import KeyvaultServicer
from helios.keyvault.seal import LocalSeal
from helios.keyvault.secrets_store import SecretStore
from helios.keyvault.service import KeyvaultService
from helios.keyvault.store import tables as keyvault_tables
from helios.keyvault.store.postgres import postgres_unit_of_work
from helios.keyvault.store.secrets_postgres import postgres_secret_unit_of_work
from helios.proto.audit.v1 import audit_pb2, audit_pb2_grpc, events_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.keyvault.v1 import keyvault_pb2, keyvault_pb2_grpc

AUDIT_SERVICE = audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name
KEYVAULT_SERVICE = keyvault_pb2.DESCRIPTOR.services_by_name["KeyvaultService"].full_name


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
    servicer = AuditServicer(audit_service)
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


# --- checkpoints and exports: a real keyvault signs ----------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="session")
def keyvault_schema(database_url: str) -> str:
    """Keyvault's schema beside audit's in the session's database."""
    location = Path(str(files("helios.keyvault.store") / "migrations"))
    migrate(database_url, keyvault_tables.SCHEMA, location, keyvault_tables.metadata)
    return database_url


@pytest.fixture
async def keyvault_port(
    keyvault_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    tmp_path: Path,
) -> AsyncIterator[int]:
    """A real keyvault gRPC server (wired like keyvault's wiring.py, local root key file) over
    the test's rolled-back sessions, on an ephemeral port with mutual TLS."""
    recorder = AuditRecorder("keyvault", keyvault_tables.outbox)
    seal = LocalSeal.from_key_file(tmp_path / "root.key")
    service = KeyvaultService(postgres_unit_of_work(db_session, recorder, _now), seal, _now)
    secrets = SecretStore(postgres_secret_unit_of_work(db_session, recorder, _now), seal, _now)
    attachments = AttachmentService(
        service,
        LocalObjectStore(tmp_path / "objects"),
        postgres_unit_of_work(db_session, recorder, _now),
    )
    servicer = KeyvaultServicer(service, secrets, attachments)  # type: ignore[abstract]
    server = GrpcService(
        "keyvault", pki["keyvault"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    server.add_service(
        KEYVAULT_SERVICE,
        lambda s: keyvault_pb2_grpc.add_KeyvaultServiceServicer_to_server(servicer, s),
    )
    port = await server.start("127.0.0.1", 0)
    try:
        yield port
    finally:
        await server.stop(0)


@pytest.fixture
async def keyvault_signer(
    keyvault_port: int, pki: dict[str, CertFiles]
) -> AsyncIterator[KeyvaultSigner]:
    """The production signer, calling keyvault as the `audit` identity."""
    signer = KeyvaultSigner(f"localhost:{keyvault_port}", pki["audit"])
    try:
        yield signer
    finally:
        await signer.close()


@pytest.fixture
def checkpoints(
    audit_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    keyvault_signer: KeyvaultSigner,
) -> CheckpointService:
    """The checkpoint use cases over the test's rolled-back sessions and the real signer."""
    return CheckpointService(PgTreeStore(db_session), keyvault_signer)


@dataclass
class Servers:
    """The audit server with checkpoints and exports wired, stubs by caller identity (`client`
    is a certificate of no Helios service), keyvault's stub as the `audit` identity, and a
    principal signer."""

    audit: dict[str, audit_pb2_grpc.AuditServiceStub]
    keyvault: keyvault_pb2_grpc.KeyvaultServiceStub
    signer: AssertionSigner

    def as_user(self, org_id: str) -> Any:
        """Metadata of a user of `org_id` (through the gateway's stub)."""
        principal = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=str(uuid.uuid4()),
            org_id=org_id,
            session_id=str(uuid.uuid4()),
        )
        return call_metadata(assertion=self.signer.sign(principal))


@pytest.fixture
async def servers(
    audit_service: AuditService,
    checkpoints: CheckpointService,
    keyvault_signer: KeyvaultSigner,
    db_session: async_sessionmaker[AsyncSession],
    keyvault_port: int,
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    signer: AssertionSigner,
) -> AsyncIterator[Servers]:
    """The audit gRPC server (wired like wiring.py: checkpoints, exports and retention, no
    consumer, no background loops) over the test's rolled-back sessions and the real keyvault
    signer."""
    exports = ExportService(PgTreeStore(db_session), PgLogReader(db_session), keyvault_signer)
    retention = RetentionService(
        postgres_retention(db_session, AuditRecorder("audit", tables.outbox)),
        keyvault_signer,
        segment_level=2,
    )
    servicer = AuditServicer(
        audit_service, checkpoints=checkpoints, exports=exports, retention=retention
    )
    server = GrpcService(
        "audit", pki["audit"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    server.add_service(
        AUDIT_SERVICE, lambda s: audit_pb2_grpc.add_AuditServiceServicer_to_server(servicer, s)
    )
    port = await server.start("127.0.0.1", 0)
    channels = {
        name: secure_channel(f"localhost:{port}", pki[name])
        for name in ("gateway", "identity", "client")
    }
    keyvault_channel = secure_channel(f"localhost:{keyvault_port}", pki["audit"])
    try:
        yield Servers(
            audit={n: audit_pb2_grpc.AuditServiceStub(c) for n, c in channels.items()},
            keyvault=keyvault_pb2_grpc.KeyvaultServiceStub(keyvault_channel),
            signer=signer,
        )
    finally:
        for channel in [*channels.values(), keyvault_channel]:
            await channel.close()
        await server.stop(0)
