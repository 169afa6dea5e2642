"""Listing and revoking sessions over gRPC, one's own and, with authz's grants, an org member's:
ListSessions, RevokeSession, RevokeUserSessions (S3, S5), decided by a real authz."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.store import tables
from helios.kernel.clients import call_metadata
from helios.proto.audit.v1 import events_pb2
from helios.proto.authz.v1 import authz_pb2
from helios.proto.identity.v1 import identity_pb2

PASSWORD = "correct horse battery staple"

Events = Callable[[], Awaitable[list[tuple[str, events_pb2.AuditEvent]]]]


@dataclass
class Person:
    """A signed-up user with one session; `metadata` carries that session's assertion."""

    user_id: str
    email: str
    token: str
    session_id: str
    metadata: Any


async def _sign_up(stub: Any) -> tuple[str, str]:
    email = f"curie.{uuid.uuid4().hex[:10]}@example.com"
    reply = await stub.SignUp(
        identity_pb2.SignUpRequest(email=email, password=PASSWORD), timeout=10
    )
    return str(reply.user.user_id), email


async def _sign_in(stub: Any, user_id: str, email: str) -> Person:
    reply = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10
    )
    resolved = await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=reply.session_token), timeout=10
    )
    return Person(
        user_id,
        email,
        reply.session_token,
        reply.session.session_id,
        call_metadata(assertion=resolved.assertion),
    )


async def _org(
    db_session: async_sessionmaker[AsyncSession], authz: Any, owner_id: str, members: list[str]
) -> str:
    """An org (rows as CreateOrg / AddOrgMember write them) seeded in authz, owner first."""
    org_id = uuid.uuid4()
    async with db_session() as session, session.begin():
        await session.execute(
            tables.orgs.insert().values(
                id=org_id,
                slug=f"org-{org_id.hex[:12]}",
                name="Org",
                created_at=dt.datetime.now(dt.UTC),
            )
        )
        for user_id, kind in [(owner_id, "owner"), *[(m, "member") for m in members]]:
            await session.execute(
                tables.memberships.insert().values(
                    org_id=org_id, user_id=uuid.UUID(user_id), user_type=kind
                )
            )
    await authz.seed_org(str(org_id), owner_id)
    return str(org_id)


@dataclass
class Team:
    """An org with an Admin and two Employees, and a stranger of another org; each signed in."""

    org_id: str
    admin: Person
    employee: Person
    colleague: Person
    stranger: Person
    stub: Any


@pytest.fixture
async def team(start_identity: Any, authz: Any, db_session: Any) -> Team:
    stub = (await start_identity(authorizer=authz.authorizer)).stub()
    users = [await _sign_up(stub) for _ in range(5)]
    owner, admin, employee, colleague, stranger = users
    org_id = await _org(db_session, authz, owner[0], [admin[0], employee[0], colleague[0]])
    await _org(db_session, authz, stranger[0], [])
    await authz.assign(org_id, admin[0], authz_pb2.ROLE_BLUEPRINT_ADMIN)
    for member in (employee, colleague):
        await authz.assign(org_id, member[0], authz_pb2.ROLE_BLUEPRINT_EMPLOYEE)
    people = [await _sign_in(stub, *user) for user in (admin, employee, colleague, stranger)]
    return Team(org_id, *people, stub=stub)


async def _refused(call: Awaitable[Any], code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == code, refused.value.details()
    return str(refused.value.details())


async def test_s5_list_own_sessions_marks_current_and_pages(team: Team) -> None:
    """S5: ListSessions without user_id lists the caller's live sessions newest first, marks the
    one the call came with, pages with next_page_token, and omits a revoked one."""
    me = team.employee
    others = [await _sign_in(team.stub, me.user_id, me.email) for _ in range(2)]
    await team.stub.RevokeSession(
        identity_pb2.RevokeSessionRequest(session_id=others[0].session_id),
        metadata=me.metadata,
        timeout=10,
    )
    first = await team.stub.ListSessions(
        identity_pb2.ListSessionsRequest(page_size=1), metadata=me.metadata, timeout=10
    )
    assert len(first.sessions) == 1
    assert first.next_page_token
    rest = await team.stub.ListSessions(
        identity_pb2.ListSessionsRequest(page_size=1, page_token=first.next_page_token),
        metadata=me.metadata,
        timeout=10,
    )
    assert len(rest.sessions) == 1
    assert not rest.next_page_token
    listed = [*first.sessions, *rest.sessions]
    assert {s.session_id for s in listed} == {me.session_id, others[1].session_id}
    assert [s.current for s in listed].count(True) == 1
    assert next(s for s in listed if s.current).session_id == me.session_id
    assert all(s.user_id == me.user_id and s.org_id == team.org_id for s in listed)


async def test_s5_admin_lists_a_member_sessions_employee_refused(team: Team) -> None:
    """S5: an Admin lists an org member's sessions (identity.session.list, scope any); an
    Employee asking for a colleague is refused, and an Admin is refused for a user of another
    org (not found in their org)."""
    listed = await team.stub.ListSessions(
        identity_pb2.ListSessionsRequest(user_id=team.employee.user_id),
        metadata=team.admin.metadata,
        timeout=10,
    )
    assert [s.session_id for s in listed.sessions] == [team.employee.session_id]
    assert not listed.sessions[0].current

    asked = identity_pb2.ListSessionsRequest(user_id=team.colleague.user_id)
    await _refused(
        team.stub.ListSessions(asked, metadata=team.employee.metadata, timeout=10),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    foreign = identity_pb2.ListSessionsRequest(user_id=team.stranger.user_id)
    await _refused(
        team.stub.ListSessions(foreign, metadata=team.admin.metadata, timeout=10),
        grpc.StatusCode.NOT_FOUND,
    )
    bad = identity_pb2.ListSessionsRequest(page_token="!!not a token")
    await _refused(
        team.stub.ListSessions(bad, metadata=team.admin.metadata, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_s3_admin_revokes_a_member_session_audited_with_who(
    team: Team, outbox_events: Events
) -> None:
    """S3/S5: an Admin revokes an Employee's session: it no longer resolves, and the audit event
    names the session, its user and the admin who revoked it. An Employee cannot revoke a
    colleague's session, nor an Admin a session of another org."""
    victim = team.employee
    await _refused(
        team.stub.RevokeSession(
            identity_pb2.RevokeSessionRequest(session_id=team.colleague.session_id),
            metadata=victim.metadata,
            timeout=10,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await _refused(
        team.stub.RevokeSession(
            identity_pb2.RevokeSessionRequest(session_id=team.stranger.session_id),
            metadata=team.admin.metadata,
            timeout=10,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await team.stub.RevokeSession(
        identity_pb2.RevokeSessionRequest(session_id=victim.session_id),
        metadata=team.admin.metadata,
        timeout=10,
    )
    await _refused(
        team.stub.ResolveSession(
            identity_pb2.ResolveSessionRequest(session_token=victim.token), timeout=10
        ),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    revokes = [e for s, e in await outbox_events() if s == "audit.identity.identity.session.revoke"]
    assert len(revokes) == 1
    event = revokes[0]
    assert event.resource_id == victim.session_id
    assert event.actor_id == team.admin.user_id
    assert event.org_id == team.org_id
    assert dict(event.diff) == {
        "user_id": victim.user_id,
        "revoked_by": team.admin.user_id,
        "own": False,
    }
    # a second revoke is idempotent and not audited again
    await team.stub.RevokeSession(
        identity_pb2.RevokeSessionRequest(session_id=victim.session_id),
        metadata=team.admin.metadata,
        timeout=10,
    )
    assert len([s for s, _ in await outbox_events() if s.endswith("session.revoke")]) == 1


async def test_s3_revoke_user_sessions_needs_the_permission_and_counts(
    team: Team, outbox_events: Events
) -> None:
    """S3: RevokeUserSessions (iam.user.revokeSessions) ends every session the member has in the
    org and is audited with the count; an Employee is refused, and nothing was revoked."""
    victim = team.colleague
    second = await _sign_in(team.stub, victim.user_id, victim.email)
    request = identity_pb2.RevokeUserSessionsRequest(user_id=victim.user_id)
    await _refused(
        team.stub.RevokeUserSessions(request, metadata=team.employee.metadata, timeout=10),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await team.stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=second.token), timeout=10
    )

    reply = await team.stub.RevokeUserSessions(request, metadata=team.admin.metadata, timeout=10)
    assert reply.revoked_count == 2
    for token in (victim.token, second.token):
        await _refused(
            team.stub.ResolveSession(
                identity_pb2.ResolveSessionRequest(session_token=token), timeout=10
            ),
            grpc.StatusCode.UNAUTHENTICATED,
        )
    events = [e for s, e in await outbox_events() if s == "audit.identity.iam.user.revokeSessions"]
    assert [(e.resource_id, e.actor_id, e.org_id) for e in events] == [
        (victim.user_id, team.admin.user_id, team.org_id)
    ]
    assert dict(events[0].diff) == {"revoked_count": 2}
    # the admin's own session is untouched
    await team.stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=team.admin.token), timeout=10
    )
