"""The broker's integration fixtures: its migrated schema, a real authz in-process, and broker
servers over the test's rolled-back connection."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.ai_broker.authz_gate import GrpcAuthz
from helios.ai_broker.domain.permissions import AI_BROKER_PERMISSIONS
from helios.ai_broker.rpc.servicer import BrokerServicer
from helios.ai_broker.service.bundle import BrokerServices
from helios.ai_broker.store import tables
from helios.ai_broker.store.postgres import postgres_unit_of_work
from helios.ai_broker.target_caller import GrpcActionTargets
from helios.authz.domain.own_permissions import AUTHZ_PERMISSIONS
from helios.authz.rpc.convert import spec_from_proto
from helios.authz.rpc.servicer import AuthzServicer
from helios.authz.service.bundle import AuthzServices
from helios.authz.store import tables as authz_tables
from helios.authz.store.decisions import BatchedDecisionLog
from helios.authz.store.postgres import postgres_unit_of_work as authz_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.clients import secure_channel
from helios.kernel.context import CallContext
from helios.kernel.migrations import migrate
from helios.kernel.permission_catalog import registration_task
from helios.kernel.principal import (
    AssertionSigner,
    AssertionVerifier,
    load_private_key,
    load_public_key,
)
from helios.kernel.server import GrpcService
from helios.kernel.step_up import StepUpVerifier
from helios.kernel.tls import CertFiles, ensure_dev_pki
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc
from helios.proto.recruitment.v1 import recruitment_pb2, recruitment_pb2_grpc
from helios.recruitment_example.authz_gate import AuthzGate
from helios.recruitment_example.candidates import CandidateBook, OfferBook
from helios.recruitment_example.catalog import RECRUITMENT_PERMISSIONS
from helios.recruitment_example.servicer import RecruitmentServicer

BROKER_SERVICE = ai_broker_pb2.DESCRIPTOR.services_by_name["AiBrokerService"].full_name
AUTHZ_SERVICE = authz_pb2.DESCRIPTOR.services_by_name["AuthzService"].full_name
RECRUITMENT_SERVICE = recruitment_pb2.DESCRIPTOR.services_by_name["RecruitmentService"].full_name


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="session")
def broker_schema(database_url: str) -> str:
    """Migrate the ai_broker schema once per test session; returns the database URL."""
    location = Path(str(files("helios.ai_broker.store") / "migrations"))
    migrate(database_url, tables.SCHEMA, location, tables.metadata)
    return database_url


@pytest.fixture(scope="session")
def authz_schema(database_url: str) -> str:
    """Migrate the authz schema once per test session; returns the database URL."""
    location = Path(str(files("helios.authz.store") / "migrations"))
    migrate(database_url, authz_tables.SCHEMA, location, authz_tables.metadata)
    return database_url


@pytest.fixture(scope="session")
def pki(pki: dict[str, CertFiles]) -> dict[str, CertFiles]:
    """The kernel's test PKI plus the example product service's identity `recruitment`."""
    return {**pki, **ensure_dev_pki(pki["ai-broker"].ca.parent, ["recruitment"])}


@pytest.fixture(scope="session")
def broker_key() -> Ed25519PrivateKey:
    """The broker's own signing key (verifiers accept it for AI principals only)."""
    return Ed25519PrivateKey.generate()


@dataclass
class AuthzServer:
    """A running authz with the broker's catalog registered; `authz` is the broker's adapter."""

    services: AuthzServices
    grpc_service: GrpcService
    authz: GrpcAuthz
    admin: authz_pb2_grpc.AuthzServiceStub

    async def seed_org(self, org_id: str, owner_id: str) -> None:
        """The org's blueprint roles, `owner_id` its Owner (what org creation triggers)."""
        await self.services.seeding.seed_org(CallContext(caller="identity"), org_id, owner_id)

    async def register(
        self, service: str, permissions: list[authz_pb2.PermissionDefinition]
    ) -> None:
        """Register a (product) service's permission catalog, as it does at start."""
        await self.services.catalog.register(
            CallContext(caller=service), service, [spec_from_proto(p) for p in permissions]
        )

    async def grant(
        self, org_id: str, user_id: str, name: str, keys: list[tuple[str, int]]
    ) -> None:
        """A custom role of (key, scope) pairs, assigned to `user_id`."""
        created = await self.admin.CreateRole(
            authz_pb2.CreateRoleRequest(
                org_id=org_id,
                name=name,
                permissions=[authz_pb2.ScopedPermission(permission=k, scope=s) for k, s in keys],
            ),
            timeout=10,
        )
        await self.admin.AssignRole(
            authz_pb2.AssignRoleRequest(
                org_id=org_id, role_id=created.role.role_id, user_id=user_id
            ),
            timeout=10,
        )


@pytest.fixture
async def authz(
    authz_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    broker_key: Ed25519PrivateKey,
) -> AsyncIterator[AuthzServer]:
    """authz wired like its wiring.py over the test's rolled-back sessions (caches off; it
    accepts the broker's AI assertions; the example `recruitment` is a product service), with
    authz's and the broker's catalogs registered."""
    uow = authz_unit_of_work(db_session, AuditRecorder("authz", authz_tables.outbox), utc_now)
    services = AuthzServices.build(
        uow,
        BatchedDecisionLog(db_session),
        utc_now,
        cache_ttl=0,
        product_services=frozenset({"recruitment"}),
    )
    await services.catalog.register(CallContext(caller="authz"), "authz", list(AUTHZ_PERMISSIONS))
    await services.catalog.register(
        CallContext(caller="ai-broker"),
        "ai-broker",
        [spec_from_proto(p) for p in AI_BROKER_PERMISSIONS],
    )
    servicer = AuthzServicer(services)
    verifier = AssertionVerifier(
        [load_public_key(principal_keys[1])], ai_keys=[broker_key.public_key()]
    )
    grpc_service = GrpcService("authz", pki["authz"], verifier)
    grpc_service.add_service(
        AUTHZ_SERVICE, lambda s: authz_pb2_grpc.add_AuthzServiceServicer_to_server(servicer, s)
    )
    port = await grpc_service.start("127.0.0.1", 0)
    gate = GrpcAuthz(f"localhost:{port}", pki["ai-broker"])
    channel = secure_channel(f"localhost:{port}", pki["identity"])
    yield AuthzServer(services, grpc_service, gate, authz_pb2_grpc.AuthzServiceStub(channel))
    await gate.close()
    await channel.close()
    await grpc_service.stop(0)


@dataclass
class BrokerServer:
    """One running broker and the channels opened to it (closed by the fixture)."""

    port: int
    pki: dict[str, CertFiles]
    grpc_service: GrpcService
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def stub(self, caller: str = "gateway") -> ai_broker_pb2_grpc.AiBrokerServiceStub:
        """A stub calling as the `caller` identity of the test PKI (the gateway by default)."""
        channel = secure_channel(f"localhost:{self.port}", self.pki[caller])
        self.channels.append(channel)
        return ai_broker_pb2_grpc.AiBrokerServiceStub(channel)


class StartBroker(Protocol):
    def __call__(
        self, *, clock: Callable[[], dt.datetime] = ..., **build: Any
    ) -> Awaitable[BrokerServer]: ...


@pytest.fixture
async def start_broker(
    broker_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    broker_key: Ed25519PrivateKey,
    authz: AuthzServer,
) -> AsyncIterator[StartBroker]:
    """Start broker servers wired like wiring.py over the test's rolled-back sessions and the
    in-process authz; `build` goes to BrokerServices.build (`targets` defaults to the gRPC
    caller of its `action_targets`, `step_up` to identity's public key). Every server stops
    with the test."""
    started: list[BrokerServer] = []
    callers: list[GrpcActionTargets] = []

    async def start(*, clock: Callable[[], dt.datetime] = utc_now, **build: Any) -> BrokerServer:
        uow = postgres_unit_of_work(db_session, AuditRecorder("ai-broker", tables.outbox), clock)
        if "targets" not in build:
            caller = GrpcActionTargets(
                build.get("action_targets") or {}, pki["ai-broker"], AssertionSigner(broker_key)
            )
            callers.append(caller)
            build["targets"] = caller
        build.setdefault("step_up", StepUpVerifier([load_public_key(principal_keys[1])]))
        services = BrokerServices.build(
            uow, clock, authz.authz, AssertionSigner(broker_key), **build
        )
        servicer = BrokerServicer(services)
        verifier = AssertionVerifier(
            [load_public_key(principal_keys[1])], ai_keys=[broker_key.public_key()]
        )
        grpc_service = GrpcService("ai-broker", pki["ai-broker"], verifier)
        grpc_service.add_service(
            BROKER_SERVICE,
            lambda s: ai_broker_pb2_grpc.add_AiBrokerServiceServicer_to_server(servicer, s),
        )
        port = await grpc_service.start("127.0.0.1", 0)
        server = BrokerServer(port=port, pki=pki, grpc_service=grpc_service)
        started.append(server)
        return server

    yield start
    for server in started:
        for channel in server.channels:
            await channel.close()
        await server.grpc_service.stop(0)
    for caller in callers:
        await caller.close()


@dataclass
class ExampleService:
    """The example product service `recruitment`, running: its address (for the broker's
    `action_targets`), a stub calling it as the broker, and the offers it sent."""

    address: str
    stub: recruitment_pb2_grpc.RecruitmentServiceStub
    offers: OfferBook


@pytest.fixture
async def example_service(
    authz: AuthzServer,
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    broker_key: Ed25519PrivateKey,
) -> AsyncIterator[ExampleService]:
    """The example service wired like its wiring.py against the in-process authz (it accepts
    the broker's AI assertions), its permissions registered the way it registers them at start;
    its actions are registered by the test, against the broker it starts."""
    authz_target = f"localhost:{authz.grpc_service.port}"
    await registration_task(
        "recruitment", RECRUITMENT_PERMISSIONS, authz_target, pki["recruitment"]
    )(asyncio.Event())
    gate = AuthzGate(authz_target, pki["recruitment"])
    offers = OfferBook()
    servicer = RecruitmentServicer(gate, CandidateBook(), offers)
    verifier = AssertionVerifier(
        [load_public_key(principal_keys[1])], ai_keys=[broker_key.public_key()]
    )
    server = GrpcService("recruitment", pki["recruitment"], verifier)
    server.add_service(
        RECRUITMENT_SERVICE,
        lambda s: recruitment_pb2_grpc.add_RecruitmentServiceServicer_to_server(servicer, s),
    )
    port = await server.start("127.0.0.1", 0)
    channel = secure_channel(f"localhost:{port}", pki["ai-broker"])
    yield ExampleService(
        f"localhost:{port}", recruitment_pb2_grpc.RecruitmentServiceStub(channel), offers
    )
    await channel.close()
    await gate.close()
    await server.stop(0)


@pytest.fixture
def user_signer(principal_keys: tuple[Path, Path]) -> AssertionSigner:
    """Identity's signer: assertions of user principals, as the gateway forwards them."""
    return AssertionSigner(load_private_key(principal_keys[0]))
