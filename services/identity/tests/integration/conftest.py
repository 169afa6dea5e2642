"""Identity's integration fixtures: the migrated schema, an in-process mTLS server over the
test's rolled-back connection, and readers of what the server wrote."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.argon2_hasher import Argon2Hasher
from helios.identity.domain.throttle import ThrottlePolicy
from helios.identity.ports import PasswordHasher
from helios.identity.rpc.servicer import IdentityServicer
from helios.identity.service.account_mail import AccountMail
from helios.identity.service.bundle import IdentityServices
from helios.identity.store import tables
from helios.identity.store.postgres import postgres_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
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
from helios.proto.audit.v1 import events_pb2
from helios.proto.identity.v1 import identity_pb2, identity_pb2_grpc

PASSWORD = "correct horse battery staple"
IDENTITY_SERVICE = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name


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
        )
        # RPCs no handler defines answer UNIMPLEMENTED (the generated base class).
        servicer = IdentityServicer(services)  # type: ignore[abstract]
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
