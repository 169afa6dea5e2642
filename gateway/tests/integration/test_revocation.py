"""Forced revocation at the gateway (S2, S3): the 60-second cache cookie against a real identity
server in-process (over the test's rolled-back connection), with the gateway's clock driven by
the test; revocations learnt from this replica's own routes and from NATS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from helios.gateway.app import create_app
from helios.gateway.settings import GatewaySettings
from helios.gateway.upstream import Upstream
from helios.identity.argon2_hasher import Argon2Hasher
from helios.identity.rpc.servicer import IdentityServicer
from helios.identity.service.bundle import IdentityServices
from helios.identity.store import tables as identity_tables
from helios.identity.store.postgres import postgres_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.bus import Bus
from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.migrations import migrate
from helios.kernel.outbox import OutboxRelay
from helios.kernel.principal import (
    AssertionSigner,
    AssertionVerifier,
    load_private_key,
    load_public_key,
)
from helios.kernel.server import GrpcService
from helios.kernel.tls import CertFiles
from helios.proto.identity.v1 import identity_pb2, identity_pb2_grpc

if TYPE_CHECKING:
    from helios.proto.identity.v1.identity_pb2_grpc import IdentityServiceAsyncStub

ORIGIN = "https://gateway.test"
PASSWORD = "correct horse battery staple"
SESSIONS = "/api/v1/identity/sessions"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Clock:
    """The gateway's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = _utc_now()

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(scope="session")
def identity_schema(database_url: str) -> str:
    """Migrate the identity schema once per test session."""
    location = Path(str(files("helios.identity.store") / "migrations"))
    migrate(database_url, identity_tables.SCHEMA, location, identity_tables.metadata)
    return database_url


@pytest.fixture
async def identity(
    identity_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
) -> AsyncIterator[IdentityServiceAsyncStub]:
    """Identity wired like its wiring.py (cheap argon2, real clock) on an ephemeral port; yields
    a stub calling it as another gateway replica would."""
    uow = postgres_unit_of_work(
        db_session, AuditRecorder("identity", identity_tables.outbox), _utc_now
    )
    services = IdentityServices.build(
        uow,
        Argon2Hasher(time_cost=1, memory_kib=8192, parallelism=1),
        AssertionSigner(load_private_key(principal_keys[0])),
        _utc_now,
        dt.timedelta(hours=12),
    )
    servicer = IdentityServicer(services)
    server = GrpcService(
        "identity", pki["identity"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    server.add_service(
        "helios.proto.identity.v1.IdentityService",
        lambda s: identity_pb2_grpc.add_IdentityServiceServicer_to_server(servicer, s),
    )
    port = await server.start("127.0.0.1", 0)
    channel = secure_channel(f"localhost:{port}", pki["gateway"])
    stub: IdentityServiceAsyncStub = identity_pb2_grpc.IdentityServiceStub(channel)
    stub.port = port  # type: ignore[attr-defined]
    yield stub
    await channel.close()
    await server.stop(0)


@dataclass
class Gateway:
    """The gateway app running in this event loop (lifespan entered; httpx over ASGI) and its
    clock."""

    app: Starlette
    clock: _Clock

    def client(self) -> httpx.AsyncClient:
        """A browser of its own (cookie jar) on the gateway."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=ORIGIN,
            headers={"origin": ORIGIN},
        )


@pytest.fixture
async def start_gateway(
    identity: IdentityServiceAsyncStub,
    gateway_settings: GatewaySettings,
    pki: dict[str, CertFiles],
) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """Gateways in front of the in-process identity with a test clock (and the revocation feed
    from NATS when given its URL), stopped when the test ends."""
    async with contextlib.AsyncExitStack() as running:

        async def start(nats_url: str = "") -> Gateway:
            settings = gateway_settings.model_copy(
                update={
                    "identity_target": f"localhost:{identity.port}",  # type: ignore[attr-defined]
                    "nats_url": nats_url,
                }
            )
            clock = _Clock()
            app = create_app(
                settings, lambda: Upstream.connect(pki["gateway"], settings.targets(), 10), clock
            )
            await running.enter_async_context(app.router.lifespan_context(app))
            return Gateway(app, clock)

        yield start


async def _signed_in(client: httpx.AsyncClient, email: str, *, sign_up: bool = True) -> str:
    """Sign in through the gateway (cookies land in the client's jar); returns the session id."""
    if sign_up:
        created = await client.post(
            "/api/auth/sign-up", json={"email": email, "password": PASSWORD}
        )
        assert created.status_code == 201, created.text
    signed_in = await client.post("/api/auth/sign-in", json={"email": email, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    client.headers["x-csrf-token"] = client.cookies["helios_csrf"]
    return str(signed_in.json()["session"]["session_id"])


async def _warm(client: httpx.AsyncClient) -> None:
    """One request that resolves the session and receives a cache cookie."""
    answered = await client.get(SESSIONS)
    assert answered.status_code == 200, answered.text
    assert client.cookies.get("helios_session_cache")


def _email() -> str:
    return f"revoked.{uuid.uuid4().hex[:10]}@example.com"


async def test_s3_cache_cookie_alone_refused_after_60_seconds(
    start_gateway: Callable[..., Awaitable[Gateway]],
    identity: IdentityServiceAsyncStub,
) -> None:
    """S2/S3: a session revoked behind this replica's back (another replica served the revoke,
    NATS is away) is still served from its cache cookie at 59 s, never from 60 s on: the gateway
    asks identity again, the request is anonymous (401) and the cache cookie is cleared."""
    gateway = await start_gateway()
    async with gateway.client() as browser:
        await _signed_in(browser, _email())
        await _warm(browser)
        token = browser.cookies["helios_session"]
        resolved = await identity.ResolveSession(
            identity_pb2.ResolveSessionRequest(session_token=token), timeout=10
        )
        await identity.SignOut(
            identity_pb2.SignOutRequest(),
            metadata=call_metadata(assertion=resolved.assertion),
            timeout=10,
        )

        gateway.clock.now += dt.timedelta(seconds=59)
        cached = await browser.get(SESSIONS)
        assert cached.status_code == 200, cached.text
        assert "set-cookie" not in cached.headers  # served from the cache cookie

        gateway.clock.now += dt.timedelta(seconds=1)
        refused = await browser.get(SESSIONS)
        assert refused.status_code == 401, refused.text
        assert "helios_session_cache=" in refused.headers["set-cookie"]
        assert "Max-Age=0" in refused.headers["set-cookie"]


async def test_s3_revoke_through_this_replica_refuses_the_cache_cookie_at_once(
    start_gateway: Callable[..., Awaitable[Gateway]],
) -> None:
    """S3: a user revokes their other browser's session through the gateway; that browser's
    next request is refused at once (same clock instant), cache cookie or not."""
    gateway = await start_gateway()
    email = _email()
    async with gateway.client() as laptop, gateway.client() as phone:
        await _signed_in(laptop, email)
        phone_session = await _signed_in(phone, email, sign_up=False)
        await _warm(phone)

        revoked = await laptop.delete(f"{SESSIONS}/{phone_session}")
        assert revoked.status_code == 200, revoked.text
        assert (await phone.get(SESSIONS)).status_code == 401
        assert (await laptop.get(SESSIONS)).status_code == 200


async def test_s3_revocation_at_another_replica_arrives_over_nats(
    start_gateway: Callable[..., Awaitable[Gateway]],
    identity: IdentityServiceAsyncStub,
    db_session: async_sessionmaker[AsyncSession],
    nats_url: str,
) -> None:
    """S3: a session revoked through another replica reaches this one as identity's audit event
    on NATS (the outbox relayed to JetStream): its cache cookie is refused long before the
    60 s are over (the gateway's clock does not move)."""
    gateway = await start_gateway(nats_url)
    relay_bus = Bus(nats_url, "identity-relay-itest")
    try:
        async with asyncio.timeout(10):
            await gateway.app.state.revocation_feed.subscribed.wait()
        async with gateway.client() as browser:
            session_id = await _signed_in(browser, _email())
            await _warm(browser)
            resolved = await identity.ResolveSession(
                identity_pb2.ResolveSessionRequest(session_token=browser.cookies["helios_session"]),
                timeout=10,
            )
            await identity.RevokeSession(
                identity_pb2.RevokeSessionRequest(session_id=session_id),
                metadata=call_metadata(assertion=resolved.assertion),
                timeout=10,
            )
            relay = OutboxRelay(db_session, identity_tables.outbox, relay_bus)
            assert await relay.publish_pending() >= 1

            deadline = time.monotonic() + 10
            while (await browser.get(SESSIONS)).status_code != 401:
                assert time.monotonic() < deadline, "the revocation never arrived"
                await asyncio.sleep(0.05)
    finally:
        await relay_bus.close()
