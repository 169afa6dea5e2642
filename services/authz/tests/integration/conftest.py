"""Authz's integration fixtures: migrated schema, an in-process mTLS server over the test's
rolled-back connection, principals of any org."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.authz.domain.own_permissions import AUTHZ_PERMISSIONS
from helios.authz.rpc.servicer import AuthzServicer
from helios.authz.service.bundle import AuthzServices
from helios.authz.store import tables
from helios.authz.store.decisions import BatchedDecisionLog
from helios.authz.store.postgres import postgres_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.context import CallContext
from helios.kernel.migrations import migrate
from helios.kernel.principal import (
    AssertionSigner,
    AssertionVerifier,
    load_private_key,
    load_public_key,
)
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
    """A running authz server; `as_user(org)` gives a stub acting for a user of `org`."""

    port: int
    pki: dict[str, CertFiles]
    signer: AssertionSigner
    server: GrpcService
    services: AuthzServices
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    async def seed_org(self, org_id: str, owner_id: str = "") -> None:
        """Seed the org's blueprint roles as the org-creation event does; `owner_id` gets Owner."""
        await self.services.seeding.seed_org(CallContext(caller="authz"), org_id, owner_id)

    async def org_owner(self, org_id: str) -> tuple[Any, Any, str]:
        """A seeded org and a stub + metadata acting as its Owner (an org admin)."""
        owner = str(uuid.uuid4())
        await self.seed_org(org_id, owner)
        stub, metadata = self.as_user(org_id, owner)
        return stub, metadata, owner

    def _stub(self, caller: str) -> Any:
        channel = secure_channel(f"localhost:{self.port}", self.pki[caller])
        self.channels.append(channel)
        return authz_pb2_grpc.AuthzServiceStub(channel)

    def principal(self, org_id: str, actor_id: str = "") -> principal_pb2.Principal:
        """A user principal of `org_id` (a fresh user unless `actor_id` is given)."""
        return principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=actor_id or str(uuid.uuid4()),
            org_id=org_id,
            session_id=str(uuid.uuid4()),
        )

    def as_user(self, org_id: str, actor_id: str = "") -> tuple[Any, Any]:
        """A stub (through the gateway's identity) and the metadata of a user of `org_id`."""
        assertion = self.signer.sign(self.principal(org_id, actor_id))
        return self._stub("gateway"), call_metadata(assertion=assertion)

    def as_admin(self, org_id: str) -> tuple[Any, Any]:
        """Role administration for `org_id` as a Helios service (identity) does it: CreateRole /
        AssignRole requests without an org get `org_id`."""
        return _OrgAdmin(self._stub("identity"), org_id), ()

    def as_service(self, caller: str) -> Any:
        """A stub calling as a service identity of the test PKI, with no principal."""
        return self._stub(caller)


class _OrgAdmin:
    """Fills in the org of role administration calls made as a Helios service."""

    def __init__(self, stub: Any, org_id: str) -> None:
        self._stub = stub
        self._org = org_id

    def CreateRole(self, request: Any, metadata: Any = ()) -> Any:  # noqa: N802 - gRPC name
        if not request.org_id:
            request.org_id = self._org
        return self._stub.CreateRole(request, metadata=metadata)

    def AssignRole(self, request: Any, metadata: Any = ()) -> Any:  # noqa: N802 - gRPC name
        if not request.org_id:
            request.org_id = self._org
        return self._stub.AssignRole(request, metadata=metadata)


@pytest.fixture
async def authz(
    authz_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
) -> AsyncIterator[Authz]:
    """One authz server wired like wiring.py over the test's rolled-back sessions, with authz's
    own catalog registered. Caches are off (ttl 0): every read is fresh unless a test builds
    its own services."""
    uow = postgres_unit_of_work(db_session, AuditRecorder("authz", tables.outbox), utc_now)
    services = AuthzServices.build(uow, BatchedDecisionLog(db_session), utc_now, cache_ttl=0)
    await services.catalog.register(CallContext(caller="authz"), "authz", list(AUTHZ_PERMISSIONS))
    servicer = AuthzServicer(services)
    server = GrpcService(
        "authz", pki["authz"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    server.add_service(
        SERVICE, lambda s: authz_pb2_grpc.add_AuthzServiceServicer_to_server(servicer, s)
    )
    port = await server.start("127.0.0.1", 0)
    running = Authz(
        port=port,
        pki=pki,
        signer=AssertionSigner(load_private_key(principal_keys[0])),
        server=server,
        services=services,
    )
    yield running
    for channel in running.channels:
        await channel.close()
    await running.server.stop(0)
