"""Identity's integration fixtures: the migrated schema, an in-process mTLS server over the
test's rolled-back connection, and readers of what the server wrote."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.authz.domain.own_permissions import AUTHZ_PERMISSIONS
from helios.authz.rpc.servicer import AuthzServicer
from helios.authz.service.bundle import AuthzServices
from helios.authz.store import tables as authz_tables
from helios.authz.store.decisions import BatchedDecisionLog
from helios.authz.store.postgres import postgres_unit_of_work as authz_unit_of_work
from helios.identity.argon2_hasher import Argon2Hasher
from helios.identity.authz_check import GrpcAuthorizer
from helios.identity.authz_user_types import GrpcUserTypes
from helios.identity.domain.permissions import IDENTITY_PERMISSIONS
from helios.identity.domain.push import PushPolicy
from helios.identity.domain.throttle import ThrottlePolicy
from helios.identity.ports import AuthConfigSource, Authorizer, PasswordHasher
from helios.identity.ports.members import OrgUserTypes
from helios.identity.ports.mfa import RowSealer
from helios.identity.rpc.servicer import IdentityServicer
from helios.identity.service.account_mail import AccountMail
from helios.identity.service.bundle import IdentityServices
from helios.identity.store import tables
from helios.identity.store.postgres import postgres_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.context import CallContext
from helios.kernel.db import create_engine
from helios.kernel.migrations import migrate
from helios.kernel.principal import (
    AssertionSigner,
    AssertionVerifier,
    load_private_key,
    load_public_key,
)
from helios.kernel.server import GrpcService
from helios.kernel.step_up import StepUpSigner
from helios.kernel.tls import CertFiles
from helios.keyvault.attachments import AttachmentService
from helios.keyvault.object_store import LocalObjectStore
from helios.keyvault.rpc.servicer import KeyvaultServicer
from helios.keyvault.seal import LocalSeal
from helios.keyvault.secrets_store import SecretStore
from helios.keyvault.service import KeyvaultService
from helios.keyvault.store import tables as keyvault_tables
from helios.keyvault.store.postgres import postgres_unit_of_work as keyvault_unit_of_work
from helios.keyvault.store.secrets_postgres import postgres_secret_unit_of_work
from helios.proto.audit.v1 import events_pb2
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc
from helios.proto.identity.v1 import identity_pb2, identity_pb2_grpc
from helios.proto.keyvault.v1 import keyvault_pb2_grpc

PASSWORD = "correct horse battery staple"
IDENTITY_SERVICE = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
AUTHZ_SERVICE = authz_pb2.DESCRIPTOR.services_by_name["AuthzService"].full_name
KEYVAULT_SERVICE = "helios.proto.keyvault.v1.KeyvaultService"


def cheap_hasher() -> Argon2Hasher:
    return Argon2Hasher(time_cost=1, memory_kib=8192, parallelism=1)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="session")
def identity_schema(database_url: str) -> str:
    """Migrate the identity schema once per test session; returns the database URL."""
    location = Path(str(files("helios.identity.store") / "migrations"))
    migrate(database_url, tables.SCHEMA, location, tables.metadata)
    return database_url


@dataclass
class IdentityServer:
    """One running identity server and the channels opened to it (closed by the fixture)."""

    port: int
    pki: dict[str, CertFiles]
    grpc_service: GrpcService
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def channel(self, certs: CertFiles) -> grpc.aio.Channel:
        """An mTLS channel to this server presenting `certs`."""
        channel = secure_channel(f"localhost:{self.port}", certs)
        self.channels.append(channel)
        return channel

    def raw_channel(self, credentials: grpc.ChannelCredentials) -> grpc.aio.Channel:
        """A channel with hand-made credentials (for refusal tests)."""
        channel = grpc.aio.secure_channel(f"localhost:{self.port}", credentials)
        self.channels.append(channel)
        return channel

    def stub(self, caller: str = "gateway") -> identity_pb2_grpc.IdentityServiceStub:
        """A stub calling as the `caller` identity of the test PKI (the gateway by default)."""
        return identity_pb2_grpc.IdentityServiceStub(self.channel(self.pki[caller]))


class StartIdentity(Protocol):
    def __call__(
        self,
        *,
        hasher: PasswordHasher | None = ...,
        clock: Callable[[], dt.datetime] = ...,
        session_ttl: dt.timedelta = ...,
        throttle: ThrottlePolicy | None = ...,
        account_mail: AccountMail | None = ...,
        config: AuthConfigSource | None = ...,
        authorizer: Authorizer | None = ...,
        push_policy: PushPolicy | None = ...,
        totp_sealer: RowSealer | None = ...,
        auth_config_sealer: RowSealer | None = ...,
        platform_org_id: str = ...,
        user_types: OrgUserTypes | None = ...,
    ) -> Awaitable[IdentityServer]: ...


@pytest.fixture
async def start_identity(
    identity_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
) -> AsyncIterator[StartIdentity]:
    """Start identity servers wired like wiring.py but over the test's rolled-back sessions;
    every server started is stopped when the test ends."""
    started: list[IdentityServer] = []

    async def start(
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        session_ttl: dt.timedelta = dt.timedelta(hours=12),
        throttle: ThrottlePolicy | None = None,
        account_mail: AccountMail | None = None,
        config: AuthConfigSource | None = None,
        authorizer: Authorizer | None = None,
        push_policy: PushPolicy | None = None,
        totp_sealer: RowSealer | None = None,
        auth_config_sealer: RowSealer | None = None,
        platform_org_id: str = "platform",
        user_types: OrgUserTypes | None = None,
    ) -> IdentityServer:
        uow = postgres_unit_of_work(db_session, AuditRecorder("identity", tables.outbox), clock)
        services = IdentityServices.build(
            uow,
            hasher or cheap_hasher(),
            AssertionSigner(load_private_key(principal_keys[0])),
            clock,
            session_ttl,
            throttle=throttle,
            account_mail=account_mail,
            config=config,
            authorizer=authorizer,
            push_policy=push_policy,
            totp_sealer=totp_sealer,
            auth_config_sealer=auth_config_sealer,
            platform_org_id=platform_org_id,
            user_types=user_types,
            step_up_issuer=StepUpSigner(load_private_key(principal_keys[0])),
        )
        servicer = IdentityServicer(services)
        grpc_service = GrpcService(
            "identity", pki["identity"], AssertionVerifier([load_public_key(principal_keys[1])])
        )
        grpc_service.add_service(
            IDENTITY_SERVICE,
            lambda server: identity_pb2_grpc.add_IdentityServiceServicer_to_server(
                servicer, server
            ),
        )
        port = await grpc_service.start("127.0.0.1", 0)
        server = IdentityServer(port=port, pki=pki, grpc_service=grpc_service)
        started.append(server)
        return server

    yield start
    for server in started:
        for channel in server.channels:
            await channel.close()
        await server.grpc_service.stop(0)


@pytest.fixture
async def identity(start_identity: StartIdentity) -> IdentityServer:
    """An identity server with cheap argon2 parameters and the real clock."""
    return await start_identity()


@pytest.fixture
def outbox_events(
    db_session: async_sessionmaker[AsyncSession],
) -> Callable[[], Awaitable[list[tuple[str, events_pb2.AuditEvent]]]]:
    """Read identity's outbox: (subject, AuditEvent) of every row this test wrote."""

    async def read() -> list[tuple[str, events_pb2.AuditEvent]]:
        async with db_session() as session:
            rows = (
                await session.execute(select(tables.outbox.c.subject, tables.outbox.c.payload))
            ).all()
        return [(row.subject, events_pb2.AuditEvent.FromString(row.payload)) for row in rows]

    return read


@pytest.fixture
def table_rows(
    db_session: async_sessionmaker[AsyncSession],
) -> Callable[[Any], Awaitable[list[Any]]]:
    """Read every row of one identity table as this test's transaction sees it."""

    async def read(table: Any) -> list[Any]:
        async with db_session() as session:
            return list((await session.execute(select(table))).all())

    return read


# --- a real authz server for admin use cases (S3, S5, S6) ----------------------------------------


@pytest.fixture(scope="session")
def authz_schema(database_url: str) -> str:
    """Migrate the authz schema once per test session; returns the database URL."""
    location = Path(str(files("helios.authz.store") / "migrations"))
    migrate(database_url, authz_tables.SCHEMA, location, authz_tables.metadata)
    return database_url


@dataclass
class AuthzServer:
    """A running authz with identity's catalog registered; `authorizer` is identity's adapter to
    it. Role administration goes through its gRPC API as identity (a Helios service) does it."""

    services: AuthzServices
    grpc_service: GrpcService
    authorizer: GrpcAuthorizer
    admin: authz_pb2_grpc.AuthzServiceStub
    channel: grpc.aio.Channel

    async def seed_org(self, org_id: str, owner_id: str) -> None:
        """The org's blueprint roles, `owner_id` its Owner (what org creation triggers)."""
        await self.services.seeding.seed_org(CallContext(caller="identity"), org_id, owner_id)

    async def assign(self, org_id: str, user_id: str, blueprint: int) -> None:
        """Give `user_id` the org's role seeded from `blueprint` (authz_pb2.ROLE_BLUEPRINT_*)."""
        roles = await self.admin.ListRoles(authz_pb2.ListRolesRequest(org_id=org_id), timeout=10)
        role = next(r for r in roles.roles if r.blueprint == blueprint)
        await self.assign_role(org_id, user_id, role.role_id)

    async def assign_role(self, org_id: str, user_id: str, role_id: str) -> None:
        """Give `user_id` the role `role_id` of the org."""
        await self.admin.AssignRole(
            authz_pb2.AssignRoleRequest(org_id=org_id, role_id=role_id, user_id=user_id),
            timeout=10,
        )

    async def custom_role(self, org_id: str, name: str, permissions: list[str]) -> str:
        """A custom role granting each `key` at scope any; returns its id."""
        created = await self.admin.CreateRole(
            authz_pb2.CreateRoleRequest(
                org_id=org_id,
                name=name,
                permissions=[
                    authz_pb2.ScopedPermission(permission=key, scope=authz_pb2.SCOPE_ANY)
                    for key in permissions
                ],
            ),
            timeout=10,
        )
        return created.role.role_id

    async def make_root(self, user_id: str, platform_org: str = "platform") -> None:
        """Make `user_id` the platform root (authz's `seed-root`)."""
        await self.services.seeding.seed_platform_root(
            CallContext(caller="authz"), platform_org, user_id
        )


@pytest.fixture
async def authz(
    authz_schema: str,
    identity_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
) -> AsyncIterator[AuthzServer]:
    """authz wired like its wiring.py over the test's rolled-back sessions (caches off), with
    authz's and identity's permission catalogs registered."""
    uow = authz_unit_of_work(db_session, AuditRecorder("authz", authz_tables.outbox), utc_now)
    services = AuthzServices.build(uow, BatchedDecisionLog(db_session), utc_now, cache_ttl=0)
    await services.catalog.register(CallContext(caller="authz"), "authz", list(AUTHZ_PERMISSIONS))
    servicer = AuthzServicer(services)
    grpc_service = GrpcService(
        "authz", pki["authz"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    grpc_service.add_service(
        AUTHZ_SERVICE, lambda s: authz_pb2_grpc.add_AuthzServiceServicer_to_server(servicer, s)
    )
    port = await grpc_service.start("127.0.0.1", 0)
    authorizer = GrpcAuthorizer(f"localhost:{port}", pki["identity"])
    channel = secure_channel(f"localhost:{port}", pki["identity"])
    admin = authz_pb2_grpc.AuthzServiceStub(channel)
    await admin.RegisterPermissions(
        authz_pb2.RegisterPermissionsRequest(service="identity", permissions=IDENTITY_PERMISSIONS),
        timeout=10,
    )
    yield AuthzServer(services, grpc_service, authorizer, admin, channel)
    await authorizer.close()
    await channel.close()
    await grpc_service.stop(0)


# --- a real keyvault (per-row secrets A3/C1, DKIM keys) -------------------------------------------


@pytest.fixture
async def keyvault_stub(
    database_url: str,
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    tmp_path: Path,
) -> AsyncIterator[keyvault_pb2_grpc.KeyvaultServiceStub]:
    """A real keyvault server (wired like keyvault's wiring.py, local root key file, its own
    engine: keyvault commits) on an ephemeral port; the stub calls it as the `identity` mTLS
    identity."""
    location = Path(str(files("helios.keyvault.store") / "migrations"))
    migrate(database_url, keyvault_tables.SCHEMA, location, keyvault_tables.metadata)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    recorder = AuditRecorder("keyvault", keyvault_tables.outbox)
    seal = LocalSeal.from_key_file(tmp_path / "root.key")
    uow = keyvault_unit_of_work(sessions, recorder, utc_now)
    service = KeyvaultService(uow, seal, utc_now)
    secrets = SecretStore(postgres_secret_unit_of_work(sessions, recorder, utc_now), seal, utc_now)
    attachments = AttachmentService(service, LocalObjectStore(tmp_path / "objects"), uow)
    servicer = KeyvaultServicer(service, secrets, attachments)  # type: ignore[abstract]
    server = GrpcService(
        "keyvault", pki["keyvault"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    server.add_service(
        KEYVAULT_SERVICE,
        lambda s: keyvault_pb2_grpc.add_KeyvaultServiceServicer_to_server(servicer, s),
    )
    port = await server.start("127.0.0.1", 0)
    channel = secure_channel(f"localhost:{port}", pki["identity"])
    try:
        yield keyvault_pb2_grpc.KeyvaultServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(0)
        await engine.dispose()


# --- an org administered through identity, backed by the real authz (orgs, members, API keys) ---


@dataclass
class Member:
    """A signed-in user; `metadata` carries their session's signed principal (as the gateway)."""

    user_id: str
    email: str
    session_id: str
    metadata: tuple[tuple[str, str | bytes], ...]


@dataclass
class OrgWorld:
    """identity over the real authz (its user types too): an org created by a Helios service
    with its blueprints seeded, and its owner signed in."""

    identity: IdentityServer
    authz: AuthzServer
    stub: identity_pb2_grpc.IdentityServiceStub
    org_id: str
    owner: Member

    async def sign_up(self) -> str:
        """A new account; returns its e-mail."""
        email = f"member-{uuid.uuid4().hex[:10]}@example.com"
        await self.stub.SignUp(
            identity_pb2.SignUpRequest(email=email, password=PASSWORD, display_name="Member")
        )
        return email

    async def sign_in(self, email: str) -> Member:
        """A session of the account (in the org it joined first) and its principal."""
        signed_in = await self.stub.SignIn(
            identity_pb2.SignInRequest(email=email, password=PASSWORD)
        )
        resolved = await self.stub.ResolveSession(
            identity_pb2.ResolveSessionRequest(session_token=signed_in.session_token)
        )
        return Member(
            user_id=resolved.principal.actor_id,
            email=email,
            session_id=resolved.principal.session_id,
            metadata=call_metadata(assertion=resolved.assertion),
        )

    async def user_type(self, name: str, blueprint: int = 0) -> str:
        """An authz user type of the org whose default role is the org's `blueprint` role
        (authz_pb2.ROLE_BLUEPRINT_*; none for 0); returns its id."""
        role_id = ""
        if blueprint:
            roles = await self.authz.admin.ListRoles(
                authz_pb2.ListRolesRequest(org_id=self.org_id), timeout=10
            )
            role_id = next(r.role_id for r in roles.roles if r.blueprint == blueprint)
        created = await self.authz.admin.CreateUserType(
            authz_pb2.CreateUserTypeRequest(org_id=self.org_id, name=name, default_role_id=role_id),
            timeout=10,
        )
        return created.user_type.user_type_id


class StartOrgWorld(Protocol):
    def __call__(self, *, clock: Callable[[], dt.datetime] = ...) -> Awaitable[OrgWorld]: ...


@pytest.fixture
def org_world(
    start_identity: StartIdentity,
    authz: AuthzServer,
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
) -> StartOrgWorld:
    """Start identity with authz as its Authorizer and user types, then an org and its owner."""

    async def start(*, clock: Callable[[], dt.datetime] = utc_now) -> OrgWorld:
        user_types = GrpcUserTypes(
            f"localhost:{authz.grpc_service.port}",
            pki["identity"],
            AssertionSigner(load_private_key(principal_keys[0])),
        )
        server = await start_identity(
            clock=clock, authorizer=authz.authorizer, user_types=user_types
        )
        stub = server.stub()
        world = OrgWorld(server, authz, stub, "", Member("", "", "", ()))
        email = await world.sign_up()
        owner_id = (
            await stub.SignIn(identity_pb2.SignInRequest(email=email, password=PASSWORD))
        ).user.user_id
        created = await server.stub("audit").CreateOrg(
            identity_pb2.CreateOrgRequest(
                slug=f"org-{uuid.uuid4().hex[:10]}", name="Org", owner_user_id=owner_id
            )
        )
        world.org_id = created.org.org_id
        await authz.seed_org(world.org_id, owner_id)
        world.owner = await world.sign_in(email)
        return world

    return start
