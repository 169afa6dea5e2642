"""AI sessions over gRPC (I1, I2): real broker servers and a real authz over the test's
rolled-back connection; the rate limit counted by two broker "replicas" (own connection pools)
in PostgreSQL at the same time."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.duration_pb2 import Duration
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.ai_broker.domain.ai_tokens import new_ai_token
from helios.ai_broker.domain.model import AiSession
from helios.ai_broker.service.ai_sessions import TOKEN_GONE
from helios.ai_broker.store import tables
from helios.ai_broker.store.postgres import postgres_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.clients import call_metadata
from helios.kernel.db import create_engine, session_factory
from helios.kernel.principal import AssertionSigner, AssertionVerifier
from helios.kernel.testing.audit_events import AuditEvents
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc
from helios.proto.authz.v1 import authz_pb2
from helios.proto.common.v1 import principal_pb2

from .conftest import AuthzServer, BrokerServer, StartBroker

pytestmark = pytest.mark.integration

Metadata = tuple[tuple[str, str | bytes], ...]
Stub = ai_broker_pb2_grpc.AiBrokerServiceStub
OWN, TEAM, ANY = authz_pb2.SCOPE_OWN, authz_pb2.SCOPE_TEAM, authz_pb2.SCOPE_ANY


class Clock:
    """The broker's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now


def person(signer: AssertionSigner, org_id: str, user_id: str, **extra: Any) -> Metadata:
    """A user principal in a session of their own, as the gateway forwards it."""
    principal = principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER,
        actor_id=user_id,
        org_id=org_id,
        session_id=str(uuid.uuid4()),
        **extra,
    )
    return call_metadata(assertion=signer.sign(principal))


def create_request(
    purpose: str = "sort my candidates", permissions: tuple[str, ...] = (), **fields: Any
) -> ai_broker_pb2.CreateAiSessionRequest:
    return ai_broker_pb2.CreateAiSessionRequest(
        purpose=purpose, permissions=list(permissions), **fields
    )


async def refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """The error `call` fails with (it must fail). A call starts when it is made: make one at a
    time, the servers share the test's connection."""
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    return failure.value


async def seeded_org(authz: AuthzServer) -> tuple[str, str]:
    """A fresh org and its Owner (every broker permission at its widest scope)."""
    org, owner = str(uuid.uuid4()), str(uuid.uuid4())
    await authz.seed_org(org, owner)
    return org, owner


async def member(authz: AuthzServer, org: str, keys: list[tuple[str, int]]) -> str:
    """A new user of the org holding exactly `keys` (through a custom role)."""
    user_id = str(uuid.uuid4())
    await authz.grant(org, user_id, f"role-{user_id[:8]}", keys)
    return user_id


async def test_i1_create_shows_the_token_once_and_stores_only_its_hash(
    start_broker: StartBroker,
    authz: AuthzServer,
    user_signer: AssertionSigner,
    db_connection: AsyncConnection,
) -> None:
    """I1: the Owner delegates (no ttl: 24 h); the token has the `hai_` prefix and appears in
    the create response only; the row holds its sha256 and a display prefix, never the token;
    the listing shows the session (ACTIVE, rate limit from the configuration) without it; the
    creation is audited as the user."""
    clock = Clock()
    org, owner = await seeded_org(authz)
    stub = (await start_broker(clock=clock, ai_session_rate_limit=7)).stub()
    audit = AuditEvents(db_connection, tables.SCHEMA)
    await audit.mark()

    reply = await stub.CreateAiSession(
        create_request(org_id=org), metadata=person(user_signer, org, owner), timeout=10
    )
    token, session = reply.token, reply.session
    assert token.startswith("hai_")
    assert len(token) == 47
    assert (session.user_id, session.org_id) == (owner, org)
    assert session.state == ai_broker_pb2.AI_SESSION_STATE_ACTIVE
    assert token.startswith(session.token_prefix)
    assert len(session.token_prefix) == 10
    assert session.rate_limit_per_minute == 7
    assert session.expire_time.ToDatetime(dt.UTC) - clock.now == dt.timedelta(hours=24)
    assert list(session.permissions) == []

    row = (
        await db_connection.execute(
            text("SELECT * FROM ai_broker.ai_sessions WHERE id = :id"),
            {"id": uuid.UUID(session.ai_session_id)},
        )
    ).one()
    assert bytes(row.token_hash) == hashlib.sha256(token.encode()).digest()
    assert not any(token in str(value) or token[4:] in str(value) for value in row)

    listed = await stub.ListAiSessions(
        ai_broker_pb2.ListAiSessionsRequest(), metadata=person(user_signer, org, owner), timeout=10
    )
    assert [s.ai_session_id for s in listed.sessions] == [session.ai_session_id]
    assert token not in str(listed)
    await audit.expect_one(
        "ai.session.create",
        actor_id=owner,
        org_id=org,
        resource_id=session.ai_session_id,
        diff={"purpose": "sort my candidates", "rate_limit_per_minute": 7},
    )


async def test_i1_resolve_gives_the_gateway_a_broker_signed_ai_principal(
    start_broker: StartBroker,
    authz: AuthzServer,
    user_signer: AssertionSigner,
    broker_key: Ed25519PrivateKey,
    db_connection: AsyncConnection,
) -> None:
    """I1: the gateway's ResolveAiToken returns {actor_type AI, actor_id the user, session_id
    the AI session, the client's ip and user agent}, signed by the broker's key (accepted for AI
    principals only), with the narrowing and the rate limit; the use is recorded at most once a
    minute. Any other caller is refused; unknown and malformed tokens get one message."""
    clock = Clock()
    org, owner = await seeded_org(authz)
    server = await start_broker(clock=clock)
    created = await server.stub().CreateAiSession(
        create_request(permissions=("ai.action.list", "ai.invocation.read:own")),
        metadata=person(user_signer, org, owner),
        timeout=10,
    )
    edge = call_metadata(client_ip="203.0.113.9", user_agent="agent/1.0")
    request = ai_broker_pb2.ResolveAiTokenRequest(token=created.token)

    reply = await server.stub("gateway").ResolveAiToken(request, metadata=edge, timeout=10)
    expected = principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_AI,
        actor_id=owner,
        org_id=org,
        session_id=created.session.ai_session_id,
        ip="203.0.113.9",
        user_agent="agent/1.0",
    )
    assert reply.principal == expected
    verifier = AssertionVerifier([], ai_keys=[broker_key.public_key()])
    assert verifier.verify(reply.assertion) == expected
    assert list(reply.permissions) == ["ai.action.list", "ai.invocation.read:own"]
    assert reply.rate_limit_per_minute == 60

    async def last_used() -> dt.datetime | None:
        value: dt.datetime | None = (
            await db_connection.execute(
                text("SELECT last_used_at FROM ai_broker.ai_sessions WHERE id = :id"),
                {"id": uuid.UUID(created.session.ai_session_id)},
            )
        ).scalar_one()
        return value

    first_use = clock.now
    assert await last_used() == first_use
    clock.now += dt.timedelta(seconds=59)
    await server.stub("gateway").ResolveAiToken(request, timeout=10)
    assert await last_used() == first_use
    clock.now += dt.timedelta(seconds=1)
    await server.stub("gateway").ResolveAiToken(request, timeout=10)
    assert await last_used() == clock.now

    for caller in ("identity", "audit", "ai-broker"):
        error = await refused(server.stub(caller).ResolveAiToken(request, timeout=10))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, caller
    for bad in (new_ai_token().token, created.token[:-1], "hls_" + created.token[4:], ""):
        error = await refused(
            server.stub().ResolveAiToken(ai_broker_pb2.ResolveAiTokenRequest(token=bad))
        )
        assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED, TOKEN_GONE)


async def test_i2_narrowing_is_never_more_than_the_users_rights(
    start_broker: StartBroker, authz: AuthzServer, user_signer: AssertionSigner
) -> None:
    """I2: a member may narrow to keys they hold at the same or a narrower scope; a key they
    lack, or a wider scope than they hold, is PERMISSION_DENIED; a malformed entry is
    INVALID_ARGUMENT. Nothing is created by a refused request."""
    org, _ = await seeded_org(authz)
    user_id = await member(
        authz,
        org,
        [("ai.session.create", OWN), ("ai.session.list", OWN), ("ai.invocation.read", TEAM)],
    )
    stub = (await start_broker()).stub()
    metadata = person(user_signer, org, user_id)

    for narrowing in (
        ("ai.invocation.read",),
        ("ai.invocation.read:own", "ai.invocation.read:team"),
        ("ai.session.list:own",),
    ):
        reply = await stub.CreateAiSession(
            create_request(permissions=narrowing), metadata=metadata, timeout=10
        )
        assert list(reply.session.permissions) == sorted(narrowing)
    for narrowing in (
        ("ai.invocation.read:any",),
        ("ai.session.list:team",),
        ("ai.session.revoke",),
        ("ai.invocation.read", "identity.apiKey.create"),
    ):
        error = await refused(
            stub.CreateAiSession(create_request(permissions=narrowing), metadata=metadata)
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, narrowing
        assert "do not hold" in (error.details() or "")
    for malformed in ("ai.*.read", "ai.invocation.read:all", "ai.invocation"):
        error = await refused(
            stub.CreateAiSession(create_request(permissions=(malformed,)), metadata=metadata)
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, malformed
    listed = await stub.ListAiSessions(
        ai_broker_pb2.ListAiSessionsRequest(), metadata=metadata, timeout=10
    )
    assert len(listed.sessions) == 3


async def test_i1_ttl_up_to_24_hours_and_a_purpose_required(
    start_broker: StartBroker, authz: AuthzServer, user_signer: AssertionSigner
) -> None:
    """I1: a 2 h ttl expires 2 h later; more than 24 h, a negative ttl or an empty purpose is
    INVALID_ARGUMENT."""
    clock = Clock()
    org, owner = await seeded_org(authz)
    stub = (await start_broker(clock=clock)).stub()
    metadata = person(user_signer, org, owner)

    reply = await stub.CreateAiSession(
        create_request(ttl=Duration(seconds=7200)), metadata=metadata, timeout=10
    )
    assert reply.session.expire_time.ToDatetime(dt.UTC) == clock.now + dt.timedelta(hours=2)
    for bad in (
        create_request(ttl=Duration(seconds=24 * 3600 + 1)),
        create_request(ttl=Duration(seconds=-60)),
        create_request(purpose="  "),
    ):
        error = await refused(stub.CreateAiSession(bad, metadata=metadata))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_i1_only_a_person_in_a_user_session_creates_ai_sessions(
    start_broker: StartBroker,
    authz: AuthzServer,
    user_signer: AssertionSigner,
    broker_key: Ed25519PrivateKey,
) -> None:
    """I1: an AI principal, an API key, an impersonation session, a user of another org and a
    member without `ai.session.create` are refused; no principal is UNAUTHENTICATED. An AI can
    neither list nor revoke AI sessions."""
    org, owner = await seeded_org(authz)
    server = await start_broker()
    stub = server.stub()
    created = await stub.CreateAiSession(
        create_request(), metadata=person(user_signer, org, owner), timeout=10
    )
    resolved = await server.stub("gateway").ResolveAiToken(
        ai_broker_pb2.ResolveAiTokenRequest(token=created.token), timeout=10
    )
    as_ai = call_metadata(assertion=resolved.assertion)
    forged_ai = call_metadata(
        assertion=AssertionSigner(broker_key).sign(
            principal_pb2.Principal(
                actor_type=principal_pb2.ACTOR_TYPE_AI,
                actor_id=owner,
                org_id=org,
                session_id=created.session.ai_session_id,
            )
        )
    )
    api_key = call_metadata(
        assertion=user_signer.sign(
            principal_pb2.Principal(
                actor_type=principal_pb2.ACTOR_TYPE_USER,
                actor_id=owner,
                org_id=org,
                session_id=f"apikey:{uuid.uuid4()}",
            )
        )
    )
    impersonating = person(user_signer, org, owner, impersonator_id=str(uuid.uuid4()))
    lacking = person(user_signer, org, await member(authz, org, [("ai.session.list", OWN)]))
    for metadata in (as_ai, forged_ai, api_key, impersonating, lacking):
        error = await refused(stub.CreateAiSession(create_request(), metadata=metadata))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    other_org = await refused(
        stub.CreateAiSession(
            create_request(org_id=str(uuid.uuid4())), metadata=person(user_signer, org, owner)
        )
    )
    assert other_org.code() == grpc.StatusCode.PERMISSION_DENIED
    anonymous = await refused(stub.CreateAiSession(create_request()))
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED

    listing = await refused(
        stub.ListAiSessions(ai_broker_pb2.ListAiSessionsRequest(), metadata=as_ai)
    )
    assert listing.code() == grpc.StatusCode.PERMISSION_DENIED
    revoking = await refused(
        stub.RevokeAiSession(
            ai_broker_pb2.RevokeAiSessionRequest(ai_session_id=created.session.ai_session_id),
            metadata=as_ai,
        )
    )
    assert revoking.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_i1_revoke_holds_at_once_on_every_replica_and_is_idempotent(
    start_broker: StartBroker,
    authz: AuthzServer,
    user_signer: AssertionSigner,
    db_connection: AsyncConnection,
) -> None:
    """I1: a token resolving on replica A is refused there right after the user revoked the
    session through replica B; revoking again changes nothing and is audited once; the listing
    hides it unless inactive sessions are asked for (REVOKED, by the user)."""
    org, owner = await seeded_org(authz)
    replica_a, replica_b = await start_broker(), await start_broker()
    metadata = person(user_signer, org, owner)
    created = await replica_a.stub().CreateAiSession(
        create_request(), metadata=metadata, timeout=10
    )
    resolve = ai_broker_pb2.ResolveAiTokenRequest(token=created.token)
    await replica_a.stub().ResolveAiToken(resolve, timeout=10)
    audit = AuditEvents(db_connection, tables.SCHEMA)
    await audit.mark()

    revoke = ai_broker_pb2.RevokeAiSessionRequest(
        org_id=org, ai_session_id=created.session.ai_session_id
    )
    first = await replica_b.stub().RevokeAiSession(revoke, metadata=metadata, timeout=10)
    assert first.session.state == ai_broker_pb2.AI_SESSION_STATE_REVOKED
    assert first.session.revoked_by == owner
    error = await refused(replica_a.stub().ResolveAiToken(resolve))
    assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED, TOKEN_GONE)
    await audit.expect_one("ai.session.revoke", actor_id=owner, org_id=org)

    again = await replica_a.stub().RevokeAiSession(revoke, metadata=metadata, timeout=10)
    assert again.session.revoke_time == first.session.revoke_time
    await audit.expect_none("a second revoke")

    active = await replica_a.stub().ListAiSessions(
        ai_broker_pb2.ListAiSessionsRequest(), metadata=metadata, timeout=10
    )
    assert list(active.sessions) == []
    every = await replica_a.stub().ListAiSessions(
        ai_broker_pb2.ListAiSessionsRequest(include_inactive=True), metadata=metadata, timeout=10
    )
    assert [s.state for s in every.sessions] == [ai_broker_pb2.AI_SESSION_STATE_REVOKED]


async def test_i1_others_sessions_only_with_a_grant_that_reaches_them(
    start_broker: StartBroker, authz: AuthzServer, user_signer: AssertionSigner
) -> None:
    """I1: a member with `own` grants can neither list nor revoke a colleague's AI sessions;
    the Owner (`any`) can; a session id unknown in the caller's org is NOT_FOUND."""
    org, owner = await seeded_org(authz)
    own_only = [("ai.session.create", OWN), ("ai.session.list", OWN), ("ai.session.revoke", OWN)]
    alice, bob = await member(authz, org, own_only), await member(authz, org, own_only)
    stub = (await start_broker()).stub()
    created = await stub.CreateAiSession(
        create_request(), metadata=person(user_signer, org, alice), timeout=10
    )
    revoke = ai_broker_pb2.RevokeAiSessionRequest(ai_session_id=created.session.ai_session_id)
    list_alice = ai_broker_pb2.ListAiSessionsRequest(user_id=alice)
    as_bob = person(user_signer, org, bob)

    listing = await refused(stub.ListAiSessions(list_alice, metadata=as_bob))
    assert listing.code() == grpc.StatusCode.PERMISSION_DENIED
    revoking = await refused(stub.RevokeAiSession(revoke, metadata=as_bob))
    assert revoking.code() == grpc.StatusCode.PERMISSION_DENIED
    as_owner = person(user_signer, org, owner)
    seen = await stub.ListAiSessions(list_alice, metadata=as_owner, timeout=10)
    assert [s.ai_session_id for s in seen.sessions] == [created.session.ai_session_id]
    revoked = await stub.RevokeAiSession(revoke, metadata=as_owner, timeout=10)
    assert revoked.session.revoked_by == owner

    other_org, other_owner = await seeded_org(authz)
    stranger = person(user_signer, other_org, other_owner)
    for request in (revoke, ai_broker_pb2.RevokeAiSessionRequest(ai_session_id=str(uuid.uuid4()))):
        error = await refused(stub.RevokeAiSession(request, metadata=stranger))
        assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_i1_an_expired_token_is_refused(
    start_broker: StartBroker, authz: AuthzServer, user_signer: AssertionSigner
) -> None:
    """I1: a 1 h session resolves until its last second, never from its expiry on; it is then
    EXPIRED among the inactive sessions."""
    clock = Clock()
    org, owner = await seeded_org(authz)
    server = await start_broker(clock=clock)
    metadata = person(user_signer, org, owner)
    created = await server.stub().CreateAiSession(
        create_request(ttl=Duration(seconds=3600)), metadata=metadata, timeout=10
    )
    resolve = ai_broker_pb2.ResolveAiTokenRequest(token=created.token)

    clock.now += dt.timedelta(seconds=3599)
    await server.stub().ResolveAiToken(resolve, timeout=10)
    clock.now += dt.timedelta(seconds=1)
    error = await refused(server.stub().ResolveAiToken(resolve))
    assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED, TOKEN_GONE)
    listed = await server.stub().ListAiSessions(
        ai_broker_pb2.ListAiSessionsRequest(include_inactive=True), metadata=metadata, timeout=10
    )
    assert [s.state for s in listed.sessions] == [ai_broker_pb2.AI_SESSION_STATE_EXPIRED]


async def test_i1_listing_pages_newest_first(
    start_broker: StartBroker, authz: AuthzServer, user_signer: AssertionSigner
) -> None:
    """I1: five sessions come back newest first in pages of two, then an empty next token; a
    forged page token is INVALID_ARGUMENT."""
    clock = Clock()
    org, owner = await seeded_org(authz)
    stub = (await start_broker(clock=clock)).stub()
    metadata = person(user_signer, org, owner)
    made = []
    for index in range(5):
        clock.now += dt.timedelta(seconds=1)
        reply = await stub.CreateAiSession(
            create_request(purpose=f"task {index}"), metadata=metadata, timeout=10
        )
        made.append(reply.session.ai_session_id)

    seen: list[str] = []
    token = ""
    for _ in range(3):
        page = await stub.ListAiSessions(
            ai_broker_pb2.ListAiSessionsRequest(page_size=2, page_token=token),
            metadata=metadata,
            timeout=10,
        )
        seen += [s.ai_session_id for s in page.sessions]
        token = page.next_page_token
    assert seen == made[::-1]
    assert token == ""
    error = await refused(
        stub.ListAiSessions(
            ai_broker_pb2.ListAiSessionsRequest(page_token="not-a-cursor"), metadata=metadata
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_i1_rate_limit_holds_across_two_broker_replicas(
    broker_schema: str, db_connection: AsyncConnection
) -> None:
    """I1: two replicas, each with its own connection pool (as the service role), take slots
    of one AI session at the same time: exactly the limit is granted in a minute, none more;
    the next minute starts afresh and the past window is dropped. Committed for real (replicas
    do not share a transaction), removed at the end."""
    engines = [create_engine(broker_schema, "helios_ai_broker", pool_size=4) for _ in range(2)]
    recorder = AuditRecorder("ai-broker", tables.outbox)
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    replicas = [
        postgres_unit_of_work(session_factory(engine), recorder, lambda: now) for engine in engines
    ]
    token = new_ai_token()
    session = AiSession(
        id=uuid.uuid4(),
        org_id=str(uuid.uuid4()),
        user_id=str(uuid.uuid4()),
        purpose="rate test",
        token_hash=token.token_hash,
        token_prefix=token.display_prefix,
        permissions=(),
        rate_limit_per_minute=25,
        created_at=now,
        expires_at=now + dt.timedelta(hours=1),
    )
    async with replicas[0]() as tx:
        await tx.add_ai_session(session)

    def taker(replica: int, at: dt.datetime) -> Callable[[], Awaitable[bool]]:
        async def take() -> bool:
            async with replicas[replica]() as tx:
                return await tx.take_rate_slot(session.id, at, 25)

        return take

    async def windows() -> list[dt.datetime]:
        rows = await db_connection.execute(
            text("SELECT window_start FROM ai_broker.ai_rate_windows WHERE session_id = :s"),
            {"s": session.id},
        )
        return [row.window_start for row in rows]

    try:
        within = now + dt.timedelta(seconds=30)
        granted = await asyncio.gather(*(taker(i % 2, within)() for i in range(60)))
        assert sum(granted) == 25
        assert not await taker(0, now + dt.timedelta(seconds=59))()
        assert await windows() == [now]

        next_minute = now + dt.timedelta(minutes=1)
        assert await taker(1, next_minute)()
        assert await windows() == [next_minute]
    finally:
        async with engines[0].begin() as connection:
            await connection.execute(
                text("DELETE FROM ai_broker.ai_sessions WHERE id = :s"), {"s": session.id}
            )
        for engine in engines:
            await engine.dispose()


async def test_i1_ai_token_and_user_session_never_stand_in_for_each_other(
    start_broker: StartBroker,
    authz: AuthzServer,
    user_signer: AssertionSigner,
    broker_key: Ed25519PrivateKey,
) -> None:
    """I1: an AI assertion is signed by the broker's key, which verifiers accept for AI
    principals only: it can never pass as a user principal; a user session token is no AI
    token."""
    org, owner = await seeded_org(authz)
    server: BrokerServer = await start_broker()
    created = await server.stub().CreateAiSession(
        create_request(), metadata=person(user_signer, org, owner), timeout=10
    )
    resolved = await server.stub().ResolveAiToken(
        ai_broker_pb2.ResolveAiTokenRequest(token=created.token), timeout=10
    )
    assert resolved.principal.actor_type == principal_pb2.ACTOR_TYPE_AI
    as_user = principal_pb2.Principal()
    as_user.CopyFrom(resolved.principal)
    as_user.actor_type = principal_pb2.ACTOR_TYPE_USER
    forged = AssertionSigner(broker_key).sign(as_user)
    error = await refused(
        server.stub().ListAiSessions(
            ai_broker_pb2.ListAiSessionsRequest(), metadata=call_metadata(assertion=forged)
        )
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    session_token = "hls_" + created.token[4:]
    error = await refused(
        server.stub().ResolveAiToken(ai_broker_pb2.ResolveAiTokenRequest(token=session_token))
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_i1_team_grant_reaches_a_teammates_ai_sessions_only(
    start_broker: StartBroker, authz: AuthzServer, user_signer: AssertionSigner
) -> None:
    """I1: a lead holding `ai.session.list` and `ai.session.revoke` at scope team lists and ends
    the AI sessions of a member of their team, and is refused for a user outside it."""
    org, _ = await seeded_org(authz)
    lead = await member(authz, org, [("ai.session.list", TEAM), ("ai.session.revoke", TEAM)])
    mate = await member(authz, org, [("ai.session.create", OWN)])
    stranger = await member(authz, org, [("ai.session.create", OWN)])
    team = await authz.admin.CreateTeam(
        authz_pb2.CreateTeamRequest(org_id=org, name=f"team-{lead[:8]}"), timeout=10
    )
    for user in (lead, mate):
        await authz.admin.AddTeamMember(
            authz_pb2.AddTeamMemberRequest(org_id=org, team_id=team.team.team_id, user_id=user),
            timeout=10,
        )
    stub = (await start_broker()).stub()
    mine = await stub.CreateAiSession(
        create_request(), metadata=person(user_signer, org, mate), timeout=10
    )
    await stub.CreateAiSession(
        create_request(), metadata=person(user_signer, org, stranger), timeout=10
    )
    as_lead = person(user_signer, org, lead)

    listed = await stub.ListAiSessions(
        ai_broker_pb2.ListAiSessionsRequest(user_id=mate), metadata=as_lead, timeout=10
    )
    assert [s.ai_session_id for s in listed.sessions] == [mine.session.ai_session_id]
    revoked = await stub.RevokeAiSession(
        ai_broker_pb2.RevokeAiSessionRequest(ai_session_id=mine.session.ai_session_id),
        metadata=as_lead,
        timeout=10,
    )
    assert revoked.session.state == ai_broker_pb2.AI_SESSION_STATE_REVOKED
    error = await refused(
        stub.ListAiSessions(ai_broker_pb2.ListAiSessionsRequest(user_id=stranger), metadata=as_lead)
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
