"""Fixtures of the local evaluator's integration tests: the real authz gRPC server over the test's
rolled-back PostgreSQL connection (as authz's own integration tests build it), a real NATS
connection, and a LocalEvaluator calling authz with a Helios service identity."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import grpc
import nats
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.authz.domain.own_permissions import AUTHZ_PERMISSIONS
from helios.authz.rpc.servicer import AuthzServicer
from helios.authz.service.bundle import AuthzServices
from helios.authz.store import tables
from helios.authz.store.decisions import BatchedDecisionLog
from helios.authz.store.postgres import postgres_unit_of_work
from helios.authz_client.evaluator import LocalEvaluator
from helios.authz_client.freshness import FreshnessPolicy
from helios.authz_client.rpc import GrpcAuthzSource
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.clients import secure_channel
from helios.kernel.context import CallContext
from helios.kernel.migrations import migrate
from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.kernel.server import GrpcService
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2_grpc
from helios.proto.common.v1 import principal_pb2

SERVICE = "helios.proto.authz.v1.AuthzService"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="session")
def authz_schema(database_url: str) -> str:
    """Migrate the authz schema once per test session."""
    location = Path(str(files("helios.authz.store") / "migrations"))
    migrate(database_url, tables.SCHEMA, location, tables.metadata)
    return database_url


@dataclass
class Authz:
    """A running authz server; `as_service(name)` is a stub calling with that mTLS identity."""

    port: int
    pki: dict[str, CertFiles]
    server: GrpcService
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def as_service(self, caller: str) -> Any:
        """A stub calling as a service identity of the test PKI, with no principal."""
        channel = secure_channel(f"localhost:{self.port}", self.pki[caller])
        self.channels.append(channel)
        return authz_pb2_grpc.AuthzServiceStub(channel)

    @staticmethod
    def principal(org_id: str, actor_id: str = "", *, ai: bool = False) -> principal_pb2.Principal:
        """A user (or, with `ai`, an AI acting for the user) of `org_id`."""
        return principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_AI if ai else principal_pb2.ACTOR_TYPE_USER,
            actor_id=actor_id or str(uuid.uuid4()),
            org_id=org_id,
            session_id=str(uuid.uuid4()),
        )

    def evaluator(self, policy: FreshnessPolicy | None = None) -> LocalEvaluator:
        """A local evaluator in a product service (the gateway's identity here), not started."""
        return LocalEvaluator(GrpcAuthzSource(self.as_service("gateway")), policy=policy)


@pytest.fixture
async def authz(
    authz_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
) -> AsyncIterator[Authz]:
    """One authz server wired like its wiring.py over the test's rolled-back sessions, with
    authz's own catalog registered and its caches at their production setting."""
    uow = postgres_unit_of_work(db_session, AuditRecorder("authz", tables.outbox), utc_now)
    services = AuthzServices.build(uow, BatchedDecisionLog(db_session), utc_now)
    await services.catalog.register(CallContext(caller="authz"), "authz", list(AUTHZ_PERMISSIONS))
    servicer = AuthzServicer(services)
    server = GrpcService(
        "authz", pki["authz"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    server.add_service(
        SERVICE, lambda s: authz_pb2_grpc.add_AuthzServiceServicer_to_server(servicer, s)
    )
    port = await server.start("127.0.0.1", 0)
    running = Authz(port=port, pki=pki, server=server)
    yield running
    for channel in running.channels:
        await channel.close()
    await running.server.stop(0)


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[Any]:
    """A core NATS connection to the test server, drained afterwards."""
    client = await nats.connect(nats_url, name="authz-client-tests", connect_timeout=5)
    yield client
    await client.drain()
