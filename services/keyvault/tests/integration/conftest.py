"""Keyvault's integration fixtures: migrated schema, an in-process mTLS server over the test's
rolled-back connection, principals of two orgs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
from helios.keyvault.service import MAX_USES, KeyvaultService
from helios.keyvault.store import tables
from helios.keyvault.store.postgres import postgres_unit_of_work
from helios.keyvault.store.secrets_postgres import postgres_secret_unit_of_work
from helios.proto.common.v1 import principal_pb2
from helios.proto.keyvault.v1 import keyvault_pb2_grpc

SERVICE = "helios.proto.keyvault.v1.KeyvaultService"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="session")
def keyvault_schema(database_url: str) -> str:
    """Migrate the keyvault schema once per test session."""
    location = Path(str(files("helios.keyvault.store") / "migrations"))
    migrate(database_url, tables.SCHEMA, location, tables.metadata)
    return database_url


@dataclass
class Keyvault:
    """A running keyvault server; `as_user(org)` gives a stub acting for a user of `org`."""

    port: int
    pki: dict[str, CertFiles]
    signer: AssertionSigner
    server: GrpcService
    seal_dir: Path
    service: KeyvaultService
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def _stub(self, caller: str) -> keyvault_pb2_grpc.KeyvaultServiceStub:
        channel = secure_channel(f"localhost:{self.port}", self.pki[caller])
        self.channels.append(channel)
        return keyvault_pb2_grpc.KeyvaultServiceStub(channel)

    def as_user(self, org_id: str) -> tuple[keyvault_pb2_grpc.KeyvaultServiceStub, object]:
        """A stub (through the gateway's identity) and the metadata of a user of `org_id`."""
        principal = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=str(uuid.uuid4()),
            org_id=org_id,
            session_id=str(uuid.uuid4()),
        )
        return self._stub("gateway"), call_metadata(assertion=self.signer.sign(principal))

    def as_service(self, caller: str) -> keyvault_pb2_grpc.KeyvaultServiceStub:
        """A stub calling as a service identity of the test PKI, with no principal."""
        return self._stub(caller)


@pytest.fixture
def seal_dir(tmp_path: Path) -> Path:
    """Where the test's root key file lives."""
    folder = tmp_path / "seal"
    folder.mkdir()
    return folder


@pytest.fixture
async def start_keyvault(
    keyvault_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    seal_dir: Path,
) -> AsyncIterator[Callable[..., Awaitable[Keyvault]]]:
    """Start keyvault servers wired like wiring.py over the test's rolled-back sessions and the
    same root key file (a second one is a restart); all are stopped when the test ends."""
    started: list[Keyvault] = []

    async def start(
        clock: Callable[[], dt.datetime] = utc_now, max_uses: int = MAX_USES
    ) -> Keyvault:
        uow = postgres_unit_of_work(db_session, AuditRecorder("keyvault", tables.outbox), clock)
        seal = LocalSeal.from_key_file(seal_dir / "root.key")
        service = KeyvaultService(uow, seal, clock, max_uses=max_uses)
        secrets = SecretStore(
            postgres_secret_unit_of_work(
                db_session, AuditRecorder("keyvault", tables.outbox), clock
            ),
            seal,
            clock,
        )
        attachments = AttachmentService(service, LocalObjectStore(seal_dir.parent / "objects"), uow)
        servicer = KeyvaultServicer(service, secrets, attachments)  # type: ignore[abstract]
        server = GrpcService(
            "keyvault", pki["keyvault"], AssertionVerifier([load_public_key(principal_keys[1])])
        )
        server.add_service(
            SERVICE, lambda s: keyvault_pb2_grpc.add_KeyvaultServiceServicer_to_server(servicer, s)
        )
        port = await server.start("127.0.0.1", 0)
        running = Keyvault(
            port=port,
            pki=pki,
            signer=AssertionSigner(load_private_key(principal_keys[0])),
            server=server,
            seal_dir=seal_dir,
            service=service,
        )
        started.append(running)
        return running

    yield start
    for running in started:
        for channel in running.channels:
            await channel.close()
        await running.server.stop(0)


@pytest.fixture
async def keyvault(start_keyvault: Callable[..., Awaitable[Keyvault]]) -> Keyvault:
    """One running keyvault."""
    return await start_keyvault()


@pytest.fixture
def start_again(
    start_keyvault: Callable[..., Awaitable[Keyvault]],
) -> Callable[..., Awaitable[Keyvault]]:
    """Start another keyvault on the same database and root key (a restart)."""
    return start_keyvault
