"""AI tokens at the gateway (I1): a real AI broker and a real authz in-process (over the test's
rolled-back connection), the gateway app in this event loop; `Authorization: Bearer hai_...`
works on the AI agent routes only and stops at once when revoked or expired."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.ai_broker.authz_gate import GrpcAuthz
from helios.ai_broker.domain.permissions import AI_BROKER_PERMISSIONS
from helios.ai_broker.rpc.servicer import BrokerServicer
from helios.ai_broker.service.bundle import BrokerServices
from helios.ai_broker.store import tables as broker_tables
from helios.ai_broker.store.postgres import postgres_unit_of_work as broker_unit_of_work
from helios.ai_broker.target_caller import GrpcActionTargets
from helios.authz.domain.own_permissions import AUTHZ_PERMISSIONS
from helios.authz.rpc.convert import spec_from_proto
from helios.authz.rpc.servicer import AuthzServicer
from helios.authz.service.bundle import AuthzServices
from helios.authz.store import tables as authz_tables
from helios.authz.store.decisions import BatchedDecisionLog
from helios.authz.store.postgres import postgres_unit_of_work as authz_unit_of_work
from helios.gateway.app import create_app
from helios.gateway.settings import GatewaySettings
from helios.gateway.upstream import Upstream
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
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc
from helios.proto.authz.v1 import authz_pb2_grpc
from helios.proto.common.v1 import principal_pb2

ORIGIN = "https://gateway.test"
BUILD_PROMPT = "/api/v1/ai/prompts:build"
PROMPT_BODY = {"prompt_name": "assistant", "user_text": "hello"}
USER_ONLY_ROUTES = [
    ("GET", "/api/v1/ai/sessions"),
    ("POST", "/api/v1/ai/sessions"),
    ("POST", f"/api/v1/ai/invocations/{uuid.UUID(int=1)}:confirm"),
    ("GET", "/api/v1/identity/me"),
    ("GET", "/api/v1/authz/roles"),
    ("GET", "/api/auth/session"),
    ("POST", "/api/auth/sign-out"),
    ("GET", "/api/v1/no/such/route"),
]


class _Clock:
    """The broker's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Stack:
    """The broker (its clock, a stub as the gateway), the Owner of a seeded org, the gateway."""

    broker: ai_broker_pb2_grpc.AiBrokerServiceStub
    clock: _Clock
    org_id: str
    owner_id: str
    owner: tuple[tuple[str, str | bytes], ...]
    app_client: httpx.AsyncClient

    async def ai_token(self, ttl_seconds: int = 0) -> ai_broker_pb2.CreateAiSessionResponse:
        """A new AI session of the Owner (created directly at the broker)."""
        request = ai_broker_pb2.CreateAiSessionRequest(purpose="gateway test")
        if ttl_seconds:
            request.ttl.seconds = ttl_seconds
        reply: ai_broker_pb2.CreateAiSessionResponse = await self.broker.CreateAiSession(
            request, metadata=self.owner, timeout=10
        )
        return reply

    async def send(self, method: str, path: str, token: str, body: object = None) -> httpx.Response:
        """One request through the gateway with `Authorization: Bearer token`."""
        return await self.app_client.request(
            method, path, json=body, headers={"authorization": f"Bearer {token}"}
        )


@pytest.fixture(scope="session")
def schemas(database_url: str) -> str:
    """Migrate the authz and ai_broker schemas once per test session."""
    for package, module in (
        ("helios.authz.store", authz_tables),
        ("helios.ai_broker.store", broker_tables),
    ):
        location = Path(str(files(package) / "migrations"))
        migrate(database_url, module.SCHEMA, location, module.metadata)
    return database_url


@pytest.fixture
async def stack(
    schemas: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    gateway_settings: GatewaySettings,
) -> AsyncIterator[Stack]:
    """authz and the broker wired like their wiring.py (one connection, taken in turns by
    sequential requests), a seeded org, and the gateway in front of the broker."""
    broker_key = Ed25519PrivateKey.generate()
    verifier = AssertionVerifier(
        [load_public_key(principal_keys[1])], ai_keys=[broker_key.public_key()]
    )
    authz_services = AuthzServices.build(
        authz_unit_of_work(db_session, AuditRecorder("authz", authz_tables.outbox), _Clock()),
        BatchedDecisionLog(db_session),
        _Clock(),
        cache_ttl=0,
        product_services=frozenset(),
    )
    await authz_services.catalog.register(
        CallContext(caller="authz"), "authz", list(AUTHZ_PERMISSIONS)
    )
    await authz_services.catalog.register(
        CallContext(caller="ai-broker"),
        "ai-broker",
        [spec_from_proto(p) for p in AI_BROKER_PERMISSIONS],
    )
    org_id, owner_id = str(uuid.uuid4()), str(uuid.uuid4())
    await authz_services.seeding.seed_org(CallContext(caller="identity"), org_id, owner_id)
    clock = _Clock()
    async with contextlib.AsyncExitStack() as running:
        authz_server = GrpcService("authz", pki["authz"], verifier)
        authz_servicer = AuthzServicer(authz_services)
        authz_server.add_service(
            "helios.proto.authz.v1.AuthzService",
            lambda s: authz_pb2_grpc.add_AuthzServiceServicer_to_server(authz_servicer, s),
        )
        authz_port = await authz_server.start("127.0.0.1", 0)
        running.push_async_callback(authz_server.stop, 0)
        gate = GrpcAuthz(f"localhost:{authz_port}", pki["ai-broker"])
        running.push_async_callback(gate.close)

        targets = GrpcActionTargets({}, pki["ai-broker"], AssertionSigner(broker_key))
        running.push_async_callback(targets.close)
        services = BrokerServices.build(
            broker_unit_of_work(
                db_session, AuditRecorder("ai-broker", broker_tables.outbox), clock
            ),
            clock,
            gate,
            AssertionSigner(broker_key),
            targets=targets,
        )
        broker_servicer = BrokerServicer(services)  # type: ignore[abstract]
        broker_server = GrpcService("ai-broker", pki["ai-broker"], verifier)
        broker_server.add_service(
            "helios.proto.ai_broker.v1.AiBrokerService",
            lambda s: ai_broker_pb2_grpc.add_AiBrokerServiceServicer_to_server(broker_servicer, s),
        )
        broker_port = await broker_server.start("127.0.0.1", 0)
        running.push_async_callback(broker_server.stop, 0)
        channel = secure_channel(f"localhost:{broker_port}", pki["gateway"])
        running.push_async_callback(channel.close)

        settings = gateway_settings.model_copy(
            update={"ai_broker_target": f"localhost:{broker_port}"}
        )
        app = create_app(settings, lambda: Upstream.connect(pki["gateway"], settings.targets(), 10))
        await running.enter_async_context(app.router.lifespan_context(app))
        client = await running.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN)
        )
        owner = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=owner_id,
            org_id=org_id,
            session_id=str(uuid.uuid4()),
        )
        yield Stack(
            broker=ai_broker_pb2_grpc.AiBrokerServiceStub(channel),
            clock=clock,
            org_id=org_id,
            owner_id=owner_id,
            owner=call_metadata(
                assertion=AssertionSigner(load_private_key(principal_keys[0])).sign(owner)
            ),
            app_client=client,
        )


async def test_i1_ai_token_works_on_the_agent_routes_only(stack: Stack) -> None:
    """I1: with `Bearer hai_...` the gateway forwards the broker-signed AI principal on the agent
    routes: BuildPrompt and ListActions answer 200 (authz allowed the AI as its user),
    GetInvocation of an unknown id 404; session management, confirmation, identity, authz, the
    cookie routes and unknown paths are 403 for it."""
    created = await stack.ai_token()

    built = await stack.send("POST", BUILD_PROMPT, created.token, PROMPT_BODY)
    assert built.status_code == 200, built.text
    assert "hello" in built.json()["prompt"]
    listed = await stack.send("GET", "/api/v1/ai/actions", created.token)
    assert listed.status_code == 200, listed.text
    fetched = await stack.send("GET", f"/api/v1/ai/invocations/{uuid.uuid4()}", created.token)
    assert fetched.status_code == 404, fetched.text

    for method, path in USER_ONLY_ROUTES:
        refused = await stack.send(method, path, created.token, {} if method == "POST" else None)
        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json()["error"]["code"] == "PERMISSION_DENIED"


async def test_i1_revoked_expired_or_unknown_ai_token_is_401(stack: Stack) -> None:
    """I1: a token the user revoked is refused (401) on the very next request; so is one past
    its expiry and one the broker never issued; a user session token is no AI token."""
    path, body = BUILD_PROMPT, PROMPT_BODY
    revoked = await stack.ai_token()
    assert (await stack.send("POST", path, revoked.token, body)).status_code == 200
    await stack.broker.RevokeAiSession(
        ai_broker_pb2.RevokeAiSessionRequest(ai_session_id=revoked.session.ai_session_id),
        metadata=stack.owner,
        timeout=10,
    )
    expiring = await stack.ai_token(ttl_seconds=600)
    assert (await stack.send("POST", path, expiring.token, body)).status_code == 200
    stack.clock.now += dt.timedelta(seconds=600)

    for token in (revoked.token, expiring.token, "hai_" + "A" * 43):
        answer = await stack.send("POST", path, token, body)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "UNAUTHENTICATED"
    other = await stack.send("POST", path, "hls_" + expiring.token[4:], body)
    assert other.status_code == 401
