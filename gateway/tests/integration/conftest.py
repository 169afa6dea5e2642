"""Gateway integration fixtures: a real audit gRPC server in-process (mTLS, the test's rolled-back
connection taken in turns) and the gateway app served over TLS 1.3 in this event loop."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.audit.rpc.servicer import AuditServicer
from helios.audit.service import AuditService
from helios.audit.store import tables
from helios.audit.store.postgres import PostgresAuditLog
from helios.gateway.app import create_app
from helios.gateway.settings import GatewaySettings
from helios.gateway.tls_server import server
from helios.gateway.upstream import Upstream
from helios.kernel.context import CallContext
from helios.kernel.migrations import migrate
from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.kernel.server import GrpcService
from helios.kernel.testing.servers import free_port
from helios.kernel.testing.turns import TurnTakingSession
from helios.kernel.tls import CertFiles
from helios.proto.audit.v1 import audit_pb2, audit_pb2_grpc

AUDIT_SERVICE = audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name
HOST = "127.0.0.1"
ALLOWED_ORIGIN = "https://console.helios.test"


class ObservedLog(PostgresAuditLog):
    """The real store; says when a watch has read the log's head (its starting cursor)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self.head_read = asyncio.Event()

    async def last_sequence(self) -> int:
        value = await super().last_sequence()
        self.head_read.set()
        return value


class ObservedService(AuditService):
    """The real service; counts open watch streams, so a test can wait for them to end."""

    def __init__(self, store: ObservedLog) -> None:
        super().__init__(store)
        self.log = store
        self.open_watches = 0
        self.none_open = asyncio.Event()

    async def watch_events(
        self, request: audit_pb2.WatchEventsRequest, ctx: CallContext, stop: asyncio.Event
    ) -> AsyncIterator[tuple[int, audit_pb2.AuditRecord]]:
        self.open_watches += 1
        self.none_open.clear()
        try:
            async for item in super().watch_events(request, ctx, stop):
                yield item
        finally:
            self.open_watches -= 1
            if not self.open_watches:
                self.none_open.set()


@pytest.fixture(scope="session")
def audit_schema(database_url: str) -> str:
    """Migrate the audit schema once per test session; returns the database URL."""
    location = Path(str(files("helios.audit.store") / "migrations"))
    migrate(database_url, tables.SCHEMA, location, tables.metadata)
    return database_url


@pytest.fixture
def turns() -> asyncio.Lock:
    """Held by whichever session uses the test's connection; a test holds it to keep the audit
    server out of the database while a stream is being cancelled."""
    return asyncio.Lock()


@pytest.fixture
def audit_service(
    audit_schema: str, db_connection: AsyncConnection, turns: asyncio.Lock
) -> ObservedService:
    """Audit's use cases over the test's rolled-back connection, taken in turns."""
    sessions: async_sessionmaker[Any] = async_sessionmaker(
        bind=db_connection,
        class_=TurnTakingSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
        turns=turns,
    )
    return ObservedService(ObservedLog(sessions))


@pytest.fixture
async def audit_port(
    audit_service: ObservedService, pki: dict[str, CertFiles], principal_keys: tuple[Path, Path]
) -> AsyncIterator[int]:
    """The audit gRPC server (wired like its wiring.py, without the stream consumer) on an
    ephemeral port with mutual TLS; yields the port."""
    # RPCs the servicer does not define answer UNIMPLEMENTED (the generated base class).
    servicer = AuditServicer(audit_service)  # type: ignore[abstract]
    grpc_service = GrpcService(
        "audit", pki["audit"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    grpc_service.add_service(
        AUDIT_SERVICE,
        lambda grpc_server: audit_pb2_grpc.add_AuditServiceServicer_to_server(
            servicer, grpc_server
        ),
    )
    port = await grpc_service.start(HOST, 0)
    try:
        yield port
    finally:
        await grpc_service.stop(0)


@pytest.fixture(scope="session")
def cookie_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 random bytes that authenticate the session cache cookie."""
    path = tmp_path_factory.mktemp("gateway") / "cookie.key"
    path.write_bytes(secrets.token_bytes(32))
    return path


@pytest.fixture
def gateway_settings(
    pki: dict[str, CertFiles], principal_keys: tuple[Path, Path], cookie_key_file: Path
) -> GatewaySettings:
    """Settings built in code: the test PKI's gateway identity, HTTPS with the same certificate
    (SAN localhost), one allowed origin besides the gateway's own."""
    certs = pki["gateway"]
    return GatewaySettings(
        tls_ca_file=certs.ca,
        tls_cert_file=certs.cert,
        tls_key_file=certs.key,
        principal_public_key_file=principal_keys[1],
        cookie_key_file=cookie_key_file,
        allowed_origins=[ALLOWED_ORIGIN],
        https_cert_file=certs.cert,
        https_key_file=certs.key,
    )


@dataclass
class RunningGateway:
    """A gateway listening with TLS 1.3 on 127.0.0.1:port (certificate for `localhost`)."""

    port: int
    settings: GatewaySettings

    @property
    def origin(self) -> str:
        """The gateway's own origin as a browser on it sends it."""
        return f"https://localhost:{self.port}"

    @property
    def ws_url(self) -> str:
        """The live channel's address."""
        return f"wss://localhost:{self.port}/api/ws"


StartGateway = Callable[[str], Awaitable[RunningGateway]]


@pytest.fixture
async def start_gateway(
    gateway_settings: GatewaySettings, pki: dict[str, CertFiles]
) -> AsyncIterator[StartGateway]:
    """Start gateways (helios.gateway.app over helios.gateway.tls_server) whose audit target is
    the given host:port; identity points at a closed port (tests send valid cache cookies, so
    it is never called). Every gateway started is stopped when the test ends."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(audit_target: str) -> RunningGateway:
        targets = {
            **gateway_settings.targets(),
            "identity": f"localhost:{free_port()}",
            "audit": audit_target,
        }

        def connect() -> Upstream:
            return Upstream.connect(
                pki["gateway"], targets, gateway_settings.upstream_timeout_seconds
            )

        app = create_app(gateway_settings, connect)
        port = free_port()
        instance = server(
            app,
            HOST,
            port,
            certfile=gateway_settings.https_cert_file,
            keyfile=gateway_settings.https_key_file,
            log_config=None,
            access_log=False,
        )
        task = asyncio.create_task(instance.serve())
        running.append((instance, task))
        async with asyncio.timeout(10):
            while not instance.started:
                assert not task.done(), "the gateway stopped before it started"
                await asyncio.sleep(0.02)
        return RunningGateway(port=port, settings=gateway_settings)

    try:
        yield start
    finally:
        for instance, _ in running:
            instance.should_exit = True
        for _, task in running:
            await asyncio.wait_for(task, timeout=10)


@pytest.fixture
async def gateway(start_gateway: StartGateway, audit_port: int) -> RunningGateway:
    """A gateway in front of the in-process audit server."""
    return await start_gateway(f"localhost:{audit_port}")
