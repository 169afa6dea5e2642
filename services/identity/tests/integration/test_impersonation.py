"""Impersonation over gRPC (S6): who may impersonate whom (decided by a real authz), the 60-minute
cap, the audit trail with impersonator_id, re-resolution and the end of an impersonation."""

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
REASON = "ticket 4711: user cannot see their invoices"

Events = Callable[[], Awaitable[list[tuple[str, events_pb2.AuditEvent]]]]


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Person:
    """A signed-up user with one session; `metadata` carries that session's assertion."""

    user_id: str
    email: str
    token: str
    session_id: str
    metadata: Any


async def _sign_up(stub: Any) -> tuple[str, str]:
    email = f"hopper.{uuid.uuid4().hex[:10]}@example.com"
    reply = await stub.SignUp(
        identity_pb2.SignUpRequest(email=email, password=PASSWORD), timeout=10
    )
    return str(reply.user.user_id), email


async def _resolve(stub: Any, token: str) -> Any:
    return await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=token), timeout=10
    )


async def _sign_in(stub: Any, user_id: str, email: str) -> Person:
    reply = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10
    )
    resolved = await _resolve(stub, reply.session_token)
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
    """An org with an Admin, a Support agent (Employee + a custom role with only
    iam.user.impersonate), two Employees, and a stranger of another org; each signed in."""

    org_id: str
    admin: Person
    support: Person
    employee: Person
    colleague: Person
    stranger: Person
    stub: Any
    clock: _Clock
    admin_role: str


@pytest.fixture
async def team(start_identity: Any, authz: Any, db_session: Any) -> Team:
    clock = _Clock()
    stub = (await start_identity(authorizer=authz.authorizer, clock=clock)).stub()
    owner, admin, support, employee, colleague, stranger = [await _sign_up(stub) for _ in range(6)]
    members = [admin[0], support[0], employee[0], colleague[0]]
    org_id = await _org(db_session, authz, owner[0], members)
    await _org(db_session, authz, stranger[0], [])
    roles = await authz.admin.ListRoles(authz_pb2.ListRolesRequest(org_id=org_id), timeout=10)
    admin_role = next(
        r.role_id for r in roles.roles if r.blueprint == authz_pb2.ROLE_BLUEPRINT_ADMIN
    )
    await authz.assign_role(org_id, admin[0], admin_role)
    for member in (support, employee, colleague):
        await authz.assign(org_id, member[0], authz_pb2.ROLE_BLUEPRINT_EMPLOYEE)
    impersonator = await authz.custom_role(org_id, "Support", ["iam.user.impersonate"])
    await authz.assign_role(org_id, support[0], impersonator)
    people = [
        await _sign_in(stub, *user) for user in (admin, support, employee, colleague, stranger)
    ]
    return Team(org_id, *people, stub=stub, clock=clock, admin_role=admin_role)


def _start(user_id: str, ttl_seconds: int = 0, reason: str = REASON) -> Any:
    return identity_pb2.StartImpersonationRequest(
        user_id=user_id, ttl_seconds=ttl_seconds, reason=reason
    )


async def _refused(call: Awaitable[Any], code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == code, refused.value.details()
    return str(refused.value.details())


async def test_s6_admin_impersonates_member_audited_with_impersonator(
    team: Team, outbox_events: Events
) -> None:
    """S6: an Admin impersonates an Employee for the default 30 minutes: the session is the
    member's, in the org, method impersonation, with impersonator_id; the start is audited with
    admin, target, reason and ttl; actions during it carry impersonator_id; stopping revokes it
    and is audited too."""
    started = await team.stub.StartImpersonation(
        _start(team.employee.user_id), metadata=team.admin.metadata, timeout=10
    )
    session = started.session
    assert session.user_id == team.employee.user_id
    assert session.impersonator_id == team.admin.user_id
    assert session.method == "impersonation"
    assert session.org_id == team.org_id
    assert session.expires_at.ToDatetime(dt.UTC) == team.clock.now + dt.timedelta(minutes=30)

    resolved = await _resolve(team.stub, started.session_token)
    assert resolved.principal.actor_id == team.employee.user_id
    assert resolved.principal.impersonator_id == team.admin.user_id
    acting = call_metadata(assertion=resolved.assertion)
    # an action while impersonating: revoke one of the member's own sessions
    await team.stub.RevokeSession(
        identity_pb2.RevokeSessionRequest(session_id=team.employee.session_id),
        metadata=acting,
        timeout=10,
    )
    await team.stub.StopImpersonation(
        identity_pb2.StopImpersonationRequest(), metadata=acting, timeout=10
    )
    await _refused(_resolve(team.stub, started.session_token), grpc.StatusCode.UNAUTHENTICATED)
    await _resolve(team.stub, team.admin.token)  # the admin's own session lives on

    events = {s.removeprefix("audit.identity."): e for s, e in await outbox_events()}
    start = events["identity.impersonation.start"]
    assert (start.actor_id, start.resource_id, start.org_id) == (
        team.admin.user_id,
        team.employee.user_id,
        team.org_id,
    )
    assert dict(start.diff) == {
        "impersonator_id": team.admin.user_id,
        "target_user_id": team.employee.user_id,
        "session_id": session.session_id,
        "reason": REASON,
        "ttl_seconds": 1800,
    }
    for action in ("identity.session.revoke", "identity.impersonation.stop"):
        event = events[action]
        assert event.actor_id == team.employee.user_id, action
        assert event.impersonator_id == team.admin.user_id, action
        assert event.session_id == session.session_id, action
    assert events["identity.impersonation.stop"].resource_id == session.session_id


async def test_s6_impersonation_capped_at_60_minutes(team: Team) -> None:
    """S6: ttl_seconds above 3600 is refused; 3600 gives a session that resolves at 59:59 and is
    refused at 60:00; a reason is required."""
    await _refused(
        team.stub.StartImpersonation(
            _start(team.employee.user_id, 3601), metadata=team.admin.metadata, timeout=10
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await _refused(
        team.stub.StartImpersonation(
            _start(team.employee.user_id, reason="  "), metadata=team.admin.metadata, timeout=10
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    started = await team.stub.StartImpersonation(
        _start(team.employee.user_id, 3600), metadata=team.admin.metadata, timeout=10
    )
    opened = team.clock.now
    assert started.session.expires_at.ToDatetime(dt.UTC) == opened + dt.timedelta(hours=1)
    team.clock.now = opened + dt.timedelta(minutes=59, seconds=59)
    await _resolve(team.stub, started.session_token)
    team.clock.now = opened + dt.timedelta(hours=1)
    await _refused(_resolve(team.stub, started.session_token), grpc.StatusCode.UNAUTHENTICATED)


async def test_s6_refused_for_higher_role_root_self_nesting_and_strangers(
    team: Team, authz: Any
) -> None:
    """S6: Support (Employee + iam.user.impersonate) may impersonate an Employee but not the
    Admin (who holds rights Support lacks); nobody impersonates the platform root, oneself, a
    user of another org, or from inside an impersonation; an Employee may not impersonate."""
    higher = await _refused(
        team.stub.StartImpersonation(
            _start(team.admin.user_id), metadata=team.support.metadata, timeout=10
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "holding rights you lack" in higher
    assert ":any" in higher
    inner = await team.stub.StartImpersonation(
        _start(team.employee.user_id), metadata=team.support.metadata, timeout=10
    )
    assert inner.session.impersonator_id == team.support.user_id

    nested = call_metadata(assertion=(await _resolve(team.stub, inner.session_token)).assertion)
    await _refused(
        team.stub.StartImpersonation(_start(team.colleague.user_id), metadata=nested, timeout=10),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    not_granted = await _refused(
        team.stub.StartImpersonation(
            _start(team.colleague.user_id), metadata=team.employee.metadata, timeout=10
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "iam.user.impersonate is not granted" in not_granted
    await _refused(
        team.stub.StartImpersonation(
            _start(team.admin.user_id), metadata=team.admin.metadata, timeout=10
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    await _refused(
        team.stub.StartImpersonation(
            _start(team.stranger.user_id), metadata=team.admin.metadata, timeout=10
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await authz.make_root(team.colleague.user_id)
    details = await _refused(
        team.stub.StartImpersonation(
            _start(team.colleague.user_id), metadata=team.admin.metadata, timeout=10
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "platform root" in details


async def test_s6_impersonation_re_decided_on_every_resolve(team: Team, authz: Any) -> None:
    """S6: a running impersonation stops resolving once its user is promoted above the admin,
    or once the admin loses iam.user.impersonate; StopImpersonation from an ordinary session is
    refused."""
    by_support = await team.stub.StartImpersonation(
        _start(team.colleague.user_id), metadata=team.support.metadata, timeout=10
    )
    await _resolve(team.stub, by_support.session_token)
    await authz.assign_role(team.org_id, team.colleague.user_id, team.admin_role)
    await _refused(_resolve(team.stub, by_support.session_token), grpc.StatusCode.UNAUTHENTICATED)

    started = await team.stub.StartImpersonation(
        _start(team.employee.user_id), metadata=team.admin.metadata, timeout=10
    )
    await _resolve(team.stub, started.session_token)
    await authz.admin.UnassignRole(
        authz_pb2.UnassignRoleRequest(
            org_id=team.org_id, role_id=team.admin_role, user_id=team.admin.user_id
        ),
        timeout=10,
    )
    await _refused(_resolve(team.stub, started.session_token), grpc.StatusCode.UNAUTHENTICATED)
    await _refused(
        team.stub.StopImpersonation(
            identity_pb2.StopImpersonationRequest(), metadata=team.admin.metadata, timeout=10
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
