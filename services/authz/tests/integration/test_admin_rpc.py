"""Org administration over gRPC against real PostgreSQL: who may administer (org-admin check, no
escalation), roles, assignments, teams, user types, dangerous actions, blueprints and the audit
of every write (Z3, Z4, Z5, Z7, D2)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.authz.domain.blueprints import Blueprint, blueprint_grants
from helios.authz.domain.own_permissions import AUTHZ_PERMISSIONS
from helios.authz_rules.dangerous import is_dangerous
from helios.authz_rules.permissions import Catalog, PermissionSpec, Scope, permission
from helios.kernel.clients import call_metadata
from helios.kernel.testing.audit_events import AuditEvents
from helios.proto.audit.v1 import events_pb2 as audit_pb2
from helios.proto.authz.v1 import authz_pb2 as az
from helios.proto.authz.v1 import events_pb2 as authz_events
from helios.proto.common.v1 import principal_pb2

from .conftest import Authz

FRESH = az.Consistency(fully_consistent=True)


def _def(key: str, *scopes: Any, dangerous: bool = False) -> az.PermissionDefinition:
    return az.PermissionDefinition(
        key=key,
        description=f"Test permission {key}.",
        dangerous=dangerous,
        allowed_scopes=list(scopes),
    )


OWN, TEAM, ANY = az.SCOPE_OWN, az.SCOPE_TEAM, az.SCOPE_ANY
DOCS = [
    _def("x.doc.read", OWN, TEAM, ANY),
    _def("x.doc.list", ANY),
    _def("x.doc.update", OWN, ANY),
    _def("x.doc.delete", ANY),
]


def _grant(key: str, scope: Any) -> az.ScopedPermission:
    return az.ScopedPermission(permission=key, scope=scope)


READ_OWN = _grant("x.doc.read", OWN)
READ_TEAM = _grant("x.doc.read", TEAM)
READ_ANY = _grant("x.doc.read", ANY)
UPDATE_OWN = _grant("x.doc.update", OWN)
DELETE_ANY = _grant("x.doc.delete", ANY)


# --- helpers --------------------------------------------------------------------------------


async def _error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def _code(call: Any) -> grpc.StatusCode:
    return (await _error(call)).code()


async def _register(authz: Authz, definitions: list[az.PermissionDefinition]) -> None:
    await authz.as_service("identity").RegisterPermissions(
        az.RegisterPermissionsRequest(service="identity", permissions=definitions)
    )


def _as(
    authz: Authz,
    org: str,
    actor_id: str = "",
    actor_type: Any = principal_pb2.ACTOR_TYPE_USER,
) -> tuple[Any, Any, principal_pb2.Principal]:
    """A stub, metadata and the signed principal (user by default, or AI) of `org`."""
    principal = principal_pb2.Principal(
        actor_type=actor_type,
        actor_id=actor_id or str(uuid.uuid4()),
        org_id=org,
        session_id=str(uuid.uuid4()),
    )
    caller = "ai-broker" if actor_type == principal_pb2.ACTOR_TYPE_AI else "gateway"
    metadata = call_metadata(assertion=authz.signer.sign(principal))
    return authz.as_service(caller), metadata, principal


async def _org(authz: Authz) -> tuple[str, Any, Any, str]:
    """A fresh org seeded after the `x.doc.*` catalog was registered; its Owner's stub."""
    await _register(authz, DOCS)
    org = str(uuid.uuid4())
    stub, metadata, owner = await authz.org_owner(org)
    return org, stub, metadata, owner


async def _check(
    stub: Any,
    metadata: Any,
    key: str,
    *,
    owner: str = "",
    team: str = "",
    consistency: az.Consistency = FRESH,
) -> az.Decision:
    resource = az.Resource(
        type=key.rsplit(".", 1)[0], id=str(uuid.uuid4()), owner_id=owner, team_id=team
    )
    reply = await stub.Check(
        az.CheckRequest(permission=key, resource=resource, consistency=consistency),
        metadata=metadata,
    )
    decision: az.Decision = reply.decision
    return decision


async def _role_by_name(authz: Authz, org: str) -> dict[str, az.Role]:
    listed = await authz.as_service("identity").ListRoles(
        az.ListRolesRequest(org_id=org, consistency=FRESH)
    )
    return {r.name: r for r in listed.roles}


async def _service_assign(authz: Authz, org: str, role_id: str, user: str) -> int:
    stub, admin = authz.as_admin(org)
    reply = await stub.AssignRole(
        az.AssignRoleRequest(role_id=role_id, user_id=user), metadata=admin
    )
    revision: int = reply.revision
    return revision


# --- 1. org-admin check ---------------------------------------------------------------------


async def test_z4_only_org_admins_of_their_own_org_administer_and_never_an_ai(
    authz: Authz,
) -> None:
    org, owner_stub, owner_meta, owner = await _org(authz)
    other_org, _, _, _ = await _org(authz)
    roles = await _role_by_name(authz, org)

    def writes(org_id: str, suffix: str) -> list[tuple[str, Any, Any]]:
        return [
            ("CreateRole", "CreateRole", az.CreateRoleRequest(org_id=org_id, name=f"r{suffix}")),
            (
                "AssignRole",
                "AssignRole",
                az.AssignRoleRequest(
                    org_id=org_id, role_id=roles["Client"].role_id, user_id=str(uuid.uuid4())
                ),
            ),
            ("CreateTeam", "CreateTeam", az.CreateTeamRequest(org_id=org_id, name=f"t{suffix}")),
            (
                "SetDangerousActions",
                "SetDangerousActions",
                az.SetDangerousActionsRequest(org_id=org_id, permissions=["x.doc.update"]),
            ),
        ]

    plain_stub, plain_meta, _ = _as(authz, org)
    for name, method, request in writes("", "plain"):
        refused = await _error(getattr(plain_stub, method)(request, metadata=plain_meta))
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED, name
    for name, method, request in writes(other_org, "b"):
        call = getattr(owner_stub, method)(request, metadata=owner_meta)
        assert await _code(call) == grpc.StatusCode.PERMISSION_DENIED, name

    # The Owner's own rights allow it; an AI acting for the very same Owner is still refused.
    allowed = await _check(owner_stub, owner_meta, "authz.role.create")
    assert allowed.allowed
    ai_stub, ai_meta, _ = _as(authz, org, owner, principal_pb2.ACTOR_TYPE_AI)
    for name, method, request in writes("", "ai"):
        refused = await _error(getattr(ai_stub, method)(request, metadata=ai_meta))
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED, name
        assert "AI" in (refused.details() or ""), name
    ai_read = ai_stub.ListRoles(az.ListRolesRequest(), metadata=ai_meta)
    assert await _code(ai_read) == grpc.StatusCode.PERMISSION_DENIED

    for _, method, request in writes("", "owner"):
        await getattr(owner_stub, method)(request, metadata=owner_meta)
    for _, method, request in writes(org, "owner2")[::2]:
        await getattr(owner_stub, method)(request, metadata=owner_meta)
    listed = await _role_by_name(authz, org)
    assert {"rowner", "rowner2"} <= set(listed)

    admin_user = str(uuid.uuid4())
    await _service_assign(authz, org, roles["Admin"].role_id, admin_user)
    admin_stub, admin_meta, _ = _as(authz, org, admin_user)
    created = await admin_stub.CreateRole(
        az.CreateRoleRequest(name="by admin", permissions=[READ_ANY]), metadata=admin_meta
    )
    assert created.role.org_id == org
    assert list(created.role.permissions) == [READ_ANY]
    assert created.role.blueprint == az.ROLE_BLUEPRINT_CUSTOM
    elsewhere = admin_stub.CreateRole(
        az.CreateRoleRequest(org_id=other_org, name="elsewhere"), metadata=admin_meta
    )
    assert await _code(elsewhere) == grpc.StatusCode.PERMISSION_DENIED
    # Plain users of the org still cannot, even after the org has admins.
    still = plain_stub.CreateRole(az.CreateRoleRequest(name="late"), metadata=plain_meta)
    assert await _code(still) == grpc.StatusCode.PERMISSION_DENIED


# --- 2. no escalation -----------------------------------------------------------------------


async def test_z4_no_escalation_through_roles_assignments_and_user_types(authz: Authz) -> None:
    org, _, _, _ = await _org(authz)
    service, admin = authz.as_admin(org)
    admin_grants = [
        _grant(k, ANY)
        for k in (
            "authz.role.create",
            "authz.role.update",
            "authz.roleAssignment.create",
            "authz.userType.create",
            "authz.userType.assign",
        )
    ]
    limited = await service.CreateRole(
        az.CreateRoleRequest(name="limited", permissions=[READ_OWN, *admin_grants]), admin
    )
    wide = await service.CreateRole(
        az.CreateRoleRequest(name="wide reader", permissions=[READ_ANY]), admin
    )
    user = str(uuid.uuid4())
    await _service_assign(authz, org, limited.role.role_id, user)
    stub, meta, _ = _as(authz, org, user)

    for grant in (READ_ANY, DELETE_ANY, READ_TEAM):
        refused = await _error(
            stub.CreateRole(
                az.CreateRoleRequest(name="too much", permissions=[grant]),
                metadata=meta,
            )
        )
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        scope = {OWN: "own", TEAM: "team", ANY: "any"}[grant.scope]
        assert f"{grant.permission}:{scope}" in (refused.details() or "")
    mine = await stub.CreateRole(
        az.CreateRoleRequest(name="own reader", permissions=[READ_OWN]), metadata=meta
    )
    assert list(mine.role.permissions) == [READ_OWN]

    other = str(uuid.uuid4())
    refused = await _error(
        stub.AssignRole(
            az.AssignRoleRequest(role_id=wide.role.role_id, user_id=other), metadata=meta
        )
    )
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "x.doc.read:any" in (refused.details() or "")
    assigned = await stub.AssignRole(
        az.AssignRoleRequest(role_id=mine.role.role_id, user_id=other), metadata=meta
    )
    assert assigned.assignment.granted_by == f"user:{user}"
    other_stub, other_meta, _ = _as(authz, org, other)
    assert not (await _check(other_stub, other_meta, "x.doc.read", owner=user)).allowed
    assert (await _check(other_stub, other_meta, "x.doc.read", owner=other)).allowed

    widen = await _error(
        stub.UpdateRole(
            az.UpdateRoleRequest(
                role_id=mine.role.role_id,
                permissions=az.ScopedPermissionList(permissions=[READ_OWN, DELETE_ANY]),
            ),
            metadata=meta,
        )
    )
    assert widen.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "x.doc.delete:any" in (widen.details() or "")
    assert not (await _check(other_stub, other_meta, "x.doc.delete")).allowed
    renamed = await stub.UpdateRole(
        az.UpdateRoleRequest(role_id=mine.role.role_id, name="own reader 2"), metadata=meta
    )
    assert renamed.role.name == "own reader 2"
    assert list(renamed.role.permissions) == [READ_OWN]
    # Editing a role that already holds grants the user lacks, without adding any, is no escalation.
    narrowed = await stub.UpdateRole(
        az.UpdateRoleRequest(
            role_id=wide.role.role_id,
            permissions=az.ScopedPermissionList(permissions=[READ_OWN]),
        ),
        metadata=meta,
    )
    assert list(narrowed.role.permissions) == [READ_OWN]

    wide2 = await service.CreateRole(
        az.CreateRoleRequest(name="wide reader 2", permissions=[READ_ANY]), admin
    )
    by_type = await _error(
        stub.CreateUserType(
            az.CreateUserTypeRequest(name="staff", default_role_id=wide2.role.role_id),
            metadata=meta,
        )
    )
    assert by_type.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "x.doc.read:any" in (by_type.details() or "")
    typed = await authz.as_service("identity").CreateUserType(
        az.CreateUserTypeRequest(org_id=org, name="staff", default_role_id=wide2.role.role_id)
    )
    through_type = stub.AssignUserType(
        az.AssignUserTypeRequest(user_id=other, user_type_id=typed.user_type.user_type_id),
        metadata=meta,
    )
    assert await _code(through_type) == grpc.StatusCode.PERMISSION_DENIED
    assert not (await _check(other_stub, other_meta, "x.doc.read", owner=user)).allowed


async def test_z4_a_role_may_carry_one_permission_at_two_scopes(authz: Authz) -> None:
    """Any bundle of permissions (Z4): `x.doc.read:own` together with `x.doc.read:any` is a valid
    request, by a service or by an org admin; it must never end in an internal error."""
    org, stub, meta, _ = await _org(authz)
    service, admin = authz.as_admin(org)
    by_service = await service.CreateRole(
        az.CreateRoleRequest(name="both", permissions=[READ_OWN, READ_ANY]), metadata=admin
    )
    assert {(p.permission, p.scope) for p in by_service.role.permissions} == {
        ("x.doc.read", OWN),
        ("x.doc.read", ANY),
    }
    by_owner = await stub.CreateRole(
        az.CreateRoleRequest(name="both 2", permissions=[READ_OWN, READ_ANY]), metadata=meta
    )
    user = str(uuid.uuid4())
    await _service_assign(authz, org, by_owner.role.role_id, user)
    u_stub, u_meta, _ = _as(authz, org, user)
    decision = await _check(u_stub, u_meta, "x.doc.read", owner=str(uuid.uuid4()))
    assert decision.allowed
    assert decision.grant.permission == READ_ANY


# --- 3. roles CRUD --------------------------------------------------------------------------


async def test_z4_roles_crud_paging_and_assignments(
    authz: Authz, db_connection: AsyncConnection
) -> None:
    org, stub, meta, owner = await _org(authz)
    created = await stub.CreateRole(
        az.CreateRoleRequest(
            name="editor", description="Edits.", permissions=[READ_ANY, UPDATE_OWN]
        ),
        metadata=meta,
    )
    role_id = created.role.role_id
    got = await stub.GetRole(az.GetRoleRequest(role_id=role_id), metadata=meta)
    assert got.role == created.role
    assert got.revision == created.revision
    assert created.role.description == "Edits."

    for name in ("aa", "bb", "cc"):
        await stub.CreateRole(az.CreateRoleRequest(name=name), metadata=meta)
    everything = await stub.ListRoles(az.ListRolesRequest(), metadata=meta)
    names = [r.name for r in everything.roles]
    assert len(names) == 9
    assert everything.next_page_token == ""
    paged: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await stub.ListRoles(
            az.ListRolesRequest(page_size=2, page_token=token), metadata=meta
        )
        assert len(page.roles) <= 2
        paged += [r.name for r in page.roles]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert paged == names
    assert pages == 5

    taken = stub.UpdateRole(az.UpdateRoleRequest(role_id=role_id, name="Owner"), metadata=meta)
    assert await _code(taken) == grpc.StatusCode.ALREADY_EXISTS
    updated = await stub.UpdateRole(
        az.UpdateRoleRequest(
            role_id=role_id,
            name="writer",
            permissions=az.ScopedPermissionList(permissions=[READ_OWN, DELETE_ANY]),
        ),
        metadata=meta,
    )
    assert updated.role.name == "writer"
    assert updated.role.description == "Edits."
    assert list(updated.role.permissions) == [DELETE_ANY, READ_OWN]
    assert updated.revision > created.revision
    assert updated.role.revision == updated.revision
    again = await stub.GetRole(az.GetRoleRequest(role_id=role_id), metadata=meta)
    assert again.role == updated.role
    (diff,) = [
        json_format.MessageToDict(e.diff)
        for e in await _audits(db_connection, "authz.role.update")
        if e.resource_id == role_id
    ]
    assert diff["grants_added"] == ["x.doc.delete:any", "x.doc.read:own"]
    assert diff["grants_removed"] == ["x.doc.read:any", "x.doc.update:own"]
    assert diff["name"] == ["editor", "writer"]

    holder = str(uuid.uuid4())
    assigned = await stub.AssignRole(
        az.AssignRoleRequest(role_id=role_id, user_id=holder), metadata=meta
    )
    holder_stub, holder_meta, _ = _as(authz, org, holder)
    assert (await _check(holder_stub, holder_meta, "x.doc.delete")).allowed

    # UnassignRole: a revision after which the grant is gone; idempotent.
    removed = await stub.UnassignRole(
        az.UnassignRoleRequest(role_id=role_id, user_id=holder), metadata=meta
    )
    assert removed.revision > assigned.revision
    after = await _check(
        holder_stub,
        holder_meta,
        "x.doc.delete",
        consistency=az.Consistency(at_least_as_fresh=removed.revision),
    )
    assert not after.allowed
    assert after.deny_reason == az.DENY_REASON_NO_GRANT
    assert after.revision >= removed.revision
    twice = await stub.UnassignRole(
        az.UnassignRoleRequest(role_id=role_id, user_id=holder), metadata=meta
    )
    assert twice.revision == removed.revision
    never = await stub.UnassignRole(
        az.UnassignRoleRequest(role_id=role_id, user_id=str(uuid.uuid4())), metadata=meta
    )
    assert never.revision == removed.revision

    # ListRoleAssignments by user and by role.
    await stub.AssignRole(az.AssignRoleRequest(role_id=role_id, user_id=holder), metadata=meta)
    roles = {r.name: r for r in everything.roles}
    await stub.AssignRole(
        az.AssignRoleRequest(role_id=roles["aa"].role_id, user_id=holder), metadata=meta
    )
    by_user = await stub.ListRoleAssignments(
        az.ListRoleAssignmentsRequest(user_id=holder), metadata=meta
    )
    assert sorted(a.role_id for a in by_user.assignments) == sorted([role_id, roles["aa"].role_id])
    assert {a.granted_by for a in by_user.assignments} == {f"user:{owner}"}
    by_role = await stub.ListRoleAssignments(
        az.ListRoleAssignmentsRequest(role_id=role_id), metadata=meta
    )
    assert [a.user_id for a in by_role.assignments] == [holder]
    owners = await stub.ListRoleAssignments(
        az.ListRoleAssignmentsRequest(user_id=owner), metadata=meta
    )
    assert [a.role_id for a in owners.assignments] == [roles["Owner"].role_id]
    all_of_org = await stub.ListRoleAssignments(az.ListRoleAssignmentsRequest(), metadata=meta)
    assert len(all_of_org.assignments) == 3
    first = await stub.ListRoleAssignments(
        az.ListRoleAssignmentsRequest(page_size=2), metadata=meta
    )
    rest = await stub.ListRoleAssignments(
        az.ListRoleAssignmentsRequest(page_size=2, page_token=first.next_page_token),
        metadata=meta,
    )
    assert [a.assignment_id for a in [*first.assignments, *rest.assignments]] == [
        a.assignment_id for a in all_of_org.assignments
    ]
    assert rest.next_page_token == ""

    # DeleteRole ends its assignments.
    assert (await _check(holder_stub, holder_meta, "x.doc.delete")).allowed
    deleted = await stub.DeleteRole(az.DeleteRoleRequest(role_id=role_id), metadata=meta)
    gone = await _check(
        holder_stub,
        holder_meta,
        "x.doc.delete",
        consistency=az.Consistency(at_least_as_fresh=deleted.revision),
    )
    assert not gone.allowed
    assert gone.deny_reason == az.DENY_REASON_NO_GRANT
    assert not (await _check(holder_stub, holder_meta, "x.doc.delete")).allowed
    missing_role = stub.GetRole(az.GetRoleRequest(role_id=role_id), metadata=meta)
    assert await _code(missing_role) == grpc.StatusCode.NOT_FOUND
    left = await stub.ListRoleAssignments(
        az.ListRoleAssignmentsRequest(user_id=holder), metadata=meta
    )
    assert [a.role_id for a in left.assignments] == [roles["aa"].role_id]
    listed = await stub.ListRoles(az.ListRolesRequest(), metadata=meta)
    assert "writer" not in [r.name for r in listed.roles]
    recreated = await stub.CreateRole(az.CreateRoleRequest(name="writer"), metadata=meta)
    assert recreated.role.role_id != role_id

    # Ids: malformed -> INVALID_ARGUMENT, unknown or another org's -> NOT_FOUND.
    other_org, _, _, _ = await _org(authz)
    foreign_role = (await _role_by_name(authz, other_org))["Owner"].role_id
    unknown = str(uuid.uuid4())
    user = str(uuid.uuid4())
    calls: dict[str, Callable[[str], Any]] = {
        "GetRole": lambda r: stub.GetRole(az.GetRoleRequest(role_id=r), metadata=meta),
        "UpdateRole": lambda r: stub.UpdateRole(
            az.UpdateRoleRequest(role_id=r, name="zz"), metadata=meta
        ),
        "DeleteRole": lambda r: stub.DeleteRole(az.DeleteRoleRequest(role_id=r), metadata=meta),
        "AssignRole": lambda r: stub.AssignRole(
            az.AssignRoleRequest(role_id=r, user_id=user), metadata=meta
        ),
        "UnassignRole": lambda r: stub.UnassignRole(
            az.UnassignRoleRequest(role_id=r, user_id=user), metadata=meta
        ),
    }
    for name, call in calls.items():
        assert await _code(call("nope")) == grpc.StatusCode.INVALID_ARGUMENT, name
        assert await _code(call(unknown)) == grpc.StatusCode.NOT_FOUND, name
        assert await _code(call(foreign_role)) == grpc.StatusCode.NOT_FOUND, name
    bad_filter = stub.ListRoleAssignments(
        az.ListRoleAssignmentsRequest(role_id="nope"), metadata=meta
    )
    assert await _code(bad_filter) == grpc.StatusCode.INVALID_ARGUMENT
    no_user = stub.AssignRole(
        az.AssignRoleRequest(role_id=roles["aa"].role_id, user_id=""), metadata=meta
    )
    assert await _code(no_user) == grpc.StatusCode.INVALID_ARGUMENT
    negative = stub.ListRoles(az.ListRolesRequest(page_size=-1), metadata=meta)
    assert await _code(negative) == grpc.StatusCode.INVALID_ARGUMENT
    # The foreign org's Owner role is untouched.
    still = await _role_by_name(authz, other_org)
    assert still["Owner"].role_id == foreign_role


# --- 4. teams -------------------------------------------------------------------------------


async def test_z5_teams_give_team_scoped_grants_their_reach(authz: Authz) -> None:
    org, stub, meta, _ = await _org(authz)
    created = await stub.CreateTeam(
        az.CreateTeamRequest(name="alpha", description="First."), metadata=meta
    )
    team = created.team
    assert team.org_id == org
    assert team.member_count == 0
    assert team.revision == created.revision
    got = await stub.GetTeam(az.GetTeamRequest(team_id=team.team_id), metadata=meta)
    assert got.team == team
    dup = stub.CreateTeam(az.CreateTeamRequest(name="alpha"), metadata=meta)
    assert await _code(dup) == grpc.StatusCode.ALREADY_EXISTS
    gamma = await stub.CreateTeam(az.CreateTeamRequest(name="gamma"), metadata=meta)
    updated = await stub.UpdateTeam(
        az.UpdateTeamRequest(team_id=team.team_id, name="beta"), metadata=meta
    )
    assert updated.team.name == "beta"
    assert updated.team.description == "First."
    assert updated.revision > created.revision
    clash = stub.UpdateTeam(
        az.UpdateTeamRequest(team_id=gamma.team.team_id, name="beta"), metadata=meta
    )
    assert await _code(clash) == grpc.StatusCode.ALREADY_EXISTS
    listed = await stub.ListTeams(az.ListTeamsRequest(), metadata=meta)
    assert [t.name for t in listed.teams] == ["beta", "gamma"]
    first = await stub.ListTeams(az.ListTeamsRequest(page_size=1), metadata=meta)
    rest = await stub.ListTeams(
        az.ListTeamsRequest(page_size=1, page_token=first.next_page_token), metadata=meta
    )
    assert [t.name for t in [*first.teams, *rest.teams]] == ["beta", "gamma"]
    assert rest.next_page_token == ""

    team_reader = await stub.CreateRole(
        az.CreateRoleRequest(name="team reader", permissions=[READ_TEAM]), metadata=meta
    )
    user, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    await stub.AssignRole(
        az.AssignRoleRequest(role_id=team_reader.role.role_id, user_id=user), metadata=meta
    )
    u_stub, u_meta, _ = _as(authz, org, user)

    async def reads_team_doc() -> az.Decision:
        return await _check(u_stub, u_meta, "x.doc.read", owner=stranger, team=team.team_id)

    before = await reads_team_doc()
    assert not before.allowed
    assert before.deny_reason == az.DENY_REASON_SCOPE_MISMATCH
    assert (await _check(u_stub, u_meta, "x.doc.read", owner=user)).allowed

    added = await stub.AddTeamMember(
        az.AddTeamMemberRequest(team_id=team.team_id, user_id=user), metadata=meta
    )
    assert added.member.user_id == user
    assert added.member.team_id == team.team_id
    repeat = await stub.AddTeamMember(
        az.AddTeamMemberRequest(team_id=team.team_id, user_id=user), metadata=meta
    )
    assert repeat.member == added.member
    assert repeat.revision == added.revision
    await stub.AddTeamMember(
        az.AddTeamMemberRequest(team_id=gamma.team.team_id, user_id=stranger), metadata=meta
    )
    counted = await stub.GetTeam(az.GetTeamRequest(team_id=team.team_id), metadata=meta)
    assert counted.team.member_count == 1
    members = await stub.ListTeamMembers(
        az.ListTeamMembersRequest(team_id=team.team_id), metadata=meta
    )
    assert [m.user_id for m in members.members] == [user]

    allowed = await reads_team_doc()
    assert allowed.allowed
    assert allowed.grant.permission == READ_TEAM
    assert allowed.grant.role_id == team_reader.role.role_id
    other_team = await _check(u_stub, u_meta, "x.doc.read", owner=stranger, team=gamma.team.team_id)
    assert not other_team.allowed
    mine = await stub.ListTeams(az.ListTeamsRequest(member_user_id=user), metadata=meta)
    assert [t.team_id for t in mine.teams] == [team.team_id]
    assert mine.teams[0].member_count == 1
    nobody = await stub.ListTeams(
        az.ListTeamsRequest(member_user_id=str(uuid.uuid4())), metadata=meta
    )
    assert list(nobody.teams) == []

    removed = await stub.RemoveTeamMember(
        az.RemoveTeamMemberRequest(team_id=team.team_id, user_id=user), metadata=meta
    )
    assert removed.revision > added.revision
    assert not (await reads_team_doc()).allowed
    again = await stub.RemoveTeamMember(
        az.RemoveTeamMemberRequest(team_id=team.team_id, user_id=user), metadata=meta
    )
    assert again.revision == removed.revision
    zero = await stub.GetTeam(az.GetTeamRequest(team_id=team.team_id), metadata=meta)
    assert zero.team.member_count == 0

    await stub.AddTeamMember(
        az.AddTeamMemberRequest(team_id=team.team_id, user_id=user), metadata=meta
    )
    assert (await reads_team_doc()).allowed
    deleted = await stub.DeleteTeam(az.DeleteTeamRequest(team_id=team.team_id), metadata=meta)
    after = await _check(
        u_stub,
        u_meta,
        "x.doc.read",
        owner=stranger,
        team=team.team_id,
        consistency=az.Consistency(at_least_as_fresh=deleted.revision),
    )
    assert not after.allowed
    missing_team = stub.GetTeam(az.GetTeamRequest(team_id=team.team_id), metadata=meta)
    assert await _code(missing_team) == grpc.StatusCode.NOT_FOUND
    gone = await stub.ListTeams(az.ListTeamsRequest(member_user_id=user), metadata=meta)
    assert list(gone.teams) == []
    reuse = await stub.CreateTeam(az.CreateTeamRequest(name="beta"), metadata=meta)
    assert reuse.team.team_id != team.team_id

    other_org, other_stub, other_meta, _ = await _org(authz)
    foreign = await other_stub.CreateTeam(az.CreateTeamRequest(name="theirs"), metadata=other_meta)
    for team_id, code in (
        ("nope", grpc.StatusCode.INVALID_ARGUMENT),
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
        (foreign.team.team_id, grpc.StatusCode.NOT_FOUND),
        (team.team_id, grpc.StatusCode.NOT_FOUND),
    ):
        # One call at a time: the test server shares one database connection.
        for method, request in (
            ("GetTeam", az.GetTeamRequest(team_id=team_id)),
            ("UpdateTeam", az.UpdateTeamRequest(team_id=team_id, name="q")),
            ("DeleteTeam", az.DeleteTeamRequest(team_id=team_id)),
            ("AddTeamMember", az.AddTeamMemberRequest(team_id=team_id, user_id=user)),
            ("RemoveTeamMember", az.RemoveTeamMemberRequest(team_id=team_id, user_id=user)),
        ):
            call = getattr(stub, method)(request, metadata=meta)
            assert await _code(call) == code, (method, team_id)
    plain_stub, plain_meta, _ = _as(authz, org)
    plain_calls: tuple[tuple[str, Any], ...] = (
        ("ListTeams", az.ListTeamsRequest()),
        ("AddTeamMember", az.AddTeamMemberRequest(team_id=reuse.team.team_id, user_id=user)),
    )
    for method, request in plain_calls:
        call = getattr(plain_stub, method)(request, metadata=plain_meta)
        assert await _code(call) == grpc.StatusCode.PERMISSION_DENIED, method
    intact = await other_stub.GetTeam(
        az.GetTeamRequest(team_id=foreign.team.team_id), metadata=other_meta
    )
    assert intact.team.name == "theirs"
    assert intact.team.org_id == other_org


# --- 5. user types --------------------------------------------------------------------------


async def test_z4_user_type_default_role_applies_to_its_users(authz: Authz) -> None:
    org, stub, meta, _ = await _org(authz)
    staff = await stub.CreateRole(
        az.CreateRoleRequest(name="staff", permissions=[READ_ANY]), metadata=meta
    )
    contractor = await stub.CreateRole(
        az.CreateRoleRequest(name="contractor", permissions=[READ_OWN]), metadata=meta
    )
    created = await stub.CreateUserType(
        az.CreateUserTypeRequest(
            name="Employee", description="Staff.", default_role_id=staff.role.role_id
        ),
        metadata=meta,
    )
    kind = created.user_type
    assert kind.default_role_id == staff.role.role_id
    assert kind.org_id == org
    got = await stub.GetUserType(
        az.GetUserTypeRequest(user_type_id=kind.user_type_id), metadata=meta
    )
    assert got.user_type == kind
    dup = stub.CreateUserType(az.CreateUserTypeRequest(name="Employee"), metadata=meta)
    assert await _code(dup) == grpc.StatusCode.ALREADY_EXISTS
    bare = await stub.CreateUserType(az.CreateUserTypeRequest(name="Visitor"), metadata=meta)
    assert bare.user_type.default_role_id == ""
    listed = await stub.ListUserTypes(az.ListUserTypesRequest(), metadata=meta)
    assert [u.name for u in listed.user_types] == ["Employee", "Visitor"]

    user, other = str(uuid.uuid4()), str(uuid.uuid4())
    u_stub, u_meta, _ = _as(authz, org, user)
    assert not (await _check(u_stub, u_meta, "x.doc.read", owner=other)).allowed
    assigned = await stub.AssignUserType(
        az.AssignUserTypeRequest(user_id=user, user_type_id=kind.user_type_id), metadata=meta
    )
    assert assigned.user_type_id == kind.user_type_id
    decision = await _check(u_stub, u_meta, "x.doc.read", owner=other)
    assert decision.allowed
    assert decision.grant.source == az.GRANT_SOURCE_USER_TYPE_DEFAULT
    assert decision.grant.user_type_id == kind.user_type_id
    assert decision.grant.role_id == staff.role.role_id
    assert decision.grant.role_name == "staff"
    assert decision.grant.assignment_id == ""
    assert decision.grant.permission == READ_ANY
    assert decision.revision >= assigned.revision
    same = await stub.AssignUserType(
        az.AssignUserTypeRequest(user_id=user, user_type_id=kind.user_type_id), metadata=meta
    )
    assert same.revision == assigned.revision
    assert same.user_type_id == kind.user_type_id

    changed = await stub.UpdateUserType(
        az.UpdateUserTypeRequest(
            user_type_id=kind.user_type_id, default_role_id=contractor.role.role_id
        ),
        metadata=meta,
    )
    assert changed.user_type.default_role_id == contractor.role.role_id
    assert changed.user_type.name == "Employee"
    foreign_doc = await _check(u_stub, u_meta, "x.doc.read", owner=other)
    assert not foreign_doc.allowed
    assert foreign_doc.deny_reason == az.DENY_REASON_SCOPE_MISMATCH
    own_doc = await _check(u_stub, u_meta, "x.doc.read", owner=user)
    assert own_doc.allowed
    assert own_doc.grant.role_id == contractor.role.role_id
    assert own_doc.grant.source == az.GRANT_SOURCE_USER_TYPE_DEFAULT

    cleared = await stub.UpdateUserType(
        az.UpdateUserTypeRequest(user_type_id=kind.user_type_id, default_role_id=""),
        metadata=meta,
    )
    assert cleared.user_type.default_role_id == ""
    none = await _check(u_stub, u_meta, "x.doc.read", owner=user)
    assert not none.allowed
    assert none.deny_reason == az.DENY_REASON_NO_GRANT
    await stub.UpdateUserType(
        az.UpdateUserTypeRequest(
            user_type_id=kind.user_type_id, name="Staff", default_role_id=staff.role.role_id
        ),
        metadata=meta,
    )
    assert (await _check(u_stub, u_meta, "x.doc.read", owner=other)).allowed

    busy = await _error(
        stub.DeleteUserType(az.DeleteUserTypeRequest(user_type_id=kind.user_type_id), metadata=meta)
    )
    assert busy.code() == grpc.StatusCode.FAILED_PRECONDITION
    still = await stub.GetUserType(
        az.GetUserTypeRequest(user_type_id=kind.user_type_id), metadata=meta
    )
    assert still.user_type.name == "Staff"

    removed = await stub.AssignUserType(
        az.AssignUserTypeRequest(user_id=user, user_type_id=""), metadata=meta
    )
    assert removed.user_type_id == ""
    assert removed.revision > assigned.revision
    after = await _check(
        u_stub,
        u_meta,
        "x.doc.read",
        owner=user,
        consistency=az.Consistency(at_least_as_fresh=removed.revision),
    )
    assert not after.allowed
    deleted = await stub.DeleteUserType(
        az.DeleteUserTypeRequest(user_type_id=kind.user_type_id), metadata=meta
    )
    assert deleted.revision > removed.revision
    missing = stub.GetUserType(az.GetUserTypeRequest(user_type_id=kind.user_type_id), metadata=meta)
    assert await _code(missing) == grpc.StatusCode.NOT_FOUND
    reassign = stub.AssignUserType(
        az.AssignUserTypeRequest(user_id=user, user_type_id=kind.user_type_id), metadata=meta
    )
    assert await _code(reassign) == grpc.StatusCode.NOT_FOUND

    other_org, _, _, _ = await _org(authz)
    foreign_role = (await _role_by_name(authz, other_org))["Client"].role_id
    for role_id, code in (
        ("nope", grpc.StatusCode.INVALID_ARGUMENT),
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
        (foreign_role, grpc.StatusCode.NOT_FOUND),
    ):
        call = stub.CreateUserType(
            az.CreateUserTypeRequest(name="x", default_role_id=role_id), metadata=meta
        )
        assert await _code(call) == code, role_id
    bad_type = stub.AssignUserType(
        az.AssignUserTypeRequest(user_id=user, user_type_id="nope"), metadata=meta
    )
    assert await _code(bad_type) == grpc.StatusCode.INVALID_ARGUMENT
    no_user = stub.AssignUserType(
        az.AssignUserTypeRequest(user_id="", user_type_id=bare.user_type.user_type_id),
        metadata=meta,
    )
    assert await _code(no_user) == grpc.StatusCode.INVALID_ARGUMENT


# --- 6. dangerous actions -------------------------------------------------------------------


async def test_d2_org_marks_more_actions_dangerous_at_once(authz: Authz) -> None:
    org, stub, meta, _ = await _org(authz)
    other_org, other_stub, other_meta, _ = await _org(authz)
    shown = await stub.GetDangerousActions(az.GetDangerousActionsRequest(), metadata=meta)
    for default in (
        "*.*.delete",
        "email.outbound.send",
        "iam.user.revokeSessions",
        "saas.organization.delete",
        "*.role.assign",
        "authz.role.update",  # flagged by its spec
    ):
        assert default in shown.default_permissions, default
    assert list(shown.org_permissions) == []

    assert not (await _check(stub, meta, "x.doc.read")).dangerous
    assert not (await _check(stub, meta, "x.doc.update")).dangerous
    marked = await stub.SetDangerousActions(
        az.SetDangerousActionsRequest(permissions=["x.*.update", "x.doc.read"]), metadata=meta
    )
    assert list(marked.permissions) == ["x.*.update", "x.doc.read"]
    for key, dangerous in (
        ("x.doc.read", True),
        ("x.doc.update", True),
        ("x.doc.list", False),
        ("x.doc.delete", True),
    ):
        decision = await _check(
            stub, meta, key, consistency=az.Consistency(at_least_as_fresh=marked.revision)
        )
        assert decision.dangerous is dangerous, key
        assert decision.allowed, key  # the Owner holds them all; dangerous is not a deny
        elsewhere = await _check(other_stub, other_meta, key)
        assert elsewhere.dangerous is (key == "x.doc.delete"), key
    listed = await stub.ListPermissions(
        az.ListPermissionsRequest(org_id=org, service="identity"), metadata=meta
    )
    flags = {p.key: (p.dangerous, p.default_dangerous) for p in listed.permissions}
    assert flags == {
        "x.doc.delete": (True, False),
        "x.doc.list": (False, False),
        "x.doc.read": (True, False),
        "x.doc.update": (True, False),
    }
    theirs = await other_stub.ListPermissions(
        az.ListPermissionsRequest(org_id=other_org, service="identity"), metadata=other_meta
    )
    assert {p.key for p in theirs.permissions if p.dangerous} == {"x.doc.delete"}
    plan = await stub.PlanList(
        az.PlanListRequest(permission="x.doc.update", resource_type="x.doc", consistency=FRESH),
        metadata=meta,
    )
    assert plan.dangerous

    shown = await stub.GetDangerousActions(az.GetDangerousActionsRequest(), metadata=meta)
    assert list(shown.org_permissions) == ["x.*.update", "x.doc.read"]
    assert shown.revision == marked.revision
    same = await stub.SetDangerousActions(
        az.SetDangerousActionsRequest(permissions=["x.doc.read", "x.*.update"]), metadata=meta
    )
    assert same.revision == marked.revision
    assert list(same.permissions) == list(marked.permissions)

    for bad in (["*.*.*"], ["x.doc"], ["X.doc.read"], ["x..read"], ["x.*"], ["x.doc.read:any"]):
        refused = stub.SetDangerousActions(
            az.SetDangerousActionsRequest(permissions=bad), metadata=meta
        )
        assert await _code(refused) == grpc.StatusCode.INVALID_ARGUMENT, bad
    unchanged = await stub.GetDangerousActions(az.GetDangerousActionsRequest(), metadata=meta)
    assert list(unchanged.org_permissions) == ["x.*.update", "x.doc.read"]

    cleared = await stub.SetDangerousActions(az.SetDangerousActionsRequest(), metadata=meta)
    assert list(cleared.permissions) == []
    assert cleared.revision > marked.revision
    assert not (await _check(stub, meta, "x.doc.read")).dangerous
    assert (await _check(stub, meta, "x.doc.delete")).dangerous  # D1 cannot be unmarked


# --- 7. blueprints --------------------------------------------------------------------------

MATRIX = [
    _def("x.doc.read", OWN, TEAM, ANY),
    _def("x.doc.list", ANY),
    _def("x.doc.update", OWN, ANY),
    _def("x.doc.delete", OWN, TEAM, ANY),
    _def("x.doc.send", TEAM, ANY, dangerous=True),
    _def("x.note.view", TEAM),
    _def("x.note.get", OWN, TEAM),
    _def("x.note.archive", OWN),
    _def("x.offer.send", OWN, TEAM, ANY),
    _def("x.account.merge", ANY),
    _def("x.ownership.transfer", ANY),
    _def("iam.user.read", OWN, TEAM, ANY),
    _def("iam.user.update", OWN, ANY),
    _def("iam.user.revokeSessions", ANY),
    _def("saas.organization.delete", ANY),
]
_SCOPE_OF = {OWN: Scope.OWN, TEAM: Scope.TEAM, ANY: Scope.ANY}
_SCOPE_PROTO = {v: k for k, v in _SCOPE_OF.items()}
_BLUEPRINT_NAMES = {
    Blueprint.OWNER: ("Owner", az.ROLE_BLUEPRINT_OWNER),
    Blueprint.ADMIN: ("Admin", az.ROLE_BLUEPRINT_ADMIN),
    Blueprint.MANAGER: ("Manager", az.ROLE_BLUEPRINT_MANAGER),
    Blueprint.EMPLOYEE: ("Employee", az.ROLE_BLUEPRINT_EMPLOYEE),
    Blueprint.CLIENT: ("Client", az.ROLE_BLUEPRINT_CLIENT),
}


def _spec(definition: az.PermissionDefinition) -> PermissionSpec:
    return permission(
        definition.key,
        definition.description,
        dangerous=definition.dangerous,
        scopes=[_SCOPE_OF[s] for s in definition.allowed_scopes],
    )


async def test_z3_seeding_is_idempotent_and_gives_the_owner_owner(
    authz: Authz, db_connection: AsyncConnection
) -> None:
    await _register(authz, DOCS)
    org, owner = str(uuid.uuid4()), str(uuid.uuid4())
    await authz.seed_org(org, owner)
    outbox = await _outbox(db_connection)
    roles = await _role_by_name(authz, org)
    assert sorted((r.blueprint, n) for n, r in roles.items()) == [
        (az.ROLE_BLUEPRINT_OWNER, "Owner"),
        (az.ROLE_BLUEPRINT_ADMIN, "Admin"),
        (az.ROLE_BLUEPRINT_MANAGER, "Manager"),
        (az.ROLE_BLUEPRINT_EMPLOYEE, "Employee"),
        (az.ROLE_BLUEPRINT_CLIENT, "Client"),
    ]
    service = authz.as_service("identity")
    before = await service.ListRoles(az.ListRolesRequest(org_id=org))
    await authz.seed_org(org, owner)
    await authz.seed_org(org, str(uuid.uuid4()))
    assert await _outbox(db_connection) == outbox
    after = await service.ListRoles(az.ListRolesRequest(org_id=org))
    assert list(after.roles) == list(before.roles)
    assert after.revision == before.revision
    held = await service.ListRoleAssignments(az.ListRoleAssignmentsRequest(org_id=org))
    assert [(a.user_id, a.role_id) for a in held.assignments] == [(owner, roles["Owner"].role_id)]
    assert held.assignments[0].granted_by == "service:authz"

    # Editable per org: an edited or deleted blueprint is not re-seeded.
    await service.UpdateRole(
        az.UpdateRoleRequest(
            org_id=org,
            role_id=roles["Client"].role_id,
            permissions=az.ScopedPermissionList(permissions=[]),
        )
    )
    await service.DeleteRole(az.DeleteRoleRequest(org_id=org, role_id=roles["Manager"].role_id))
    await authz.seed_org(org, owner)
    now = await _role_by_name(authz, org)
    assert sorted(now) == ["Admin", "Client", "Employee", "Owner"]
    assert list(now["Client"].permissions) == []


async def test_z3_blueprint_matrix_matches_blueprint_grants_exactly(authz: Authz) -> None:
    await _register(authz, MATRIX)
    catalog = Catalog([*AUTHZ_PERMISSIONS, *(_spec(d) for d in MATRIX)])
    org, owner = str(uuid.uuid4()), str(uuid.uuid4())
    await authz.seed_org(org, owner)
    service = authz.as_service("identity")
    served = await service.ListPermissions(az.ListPermissionsRequest(page_size=500))
    assert sorted(p.key for p in served.permissions) == sorted(str(s.key) for s in catalog)

    roles = await _role_by_name(authz, org)
    team = (await service.CreateTeam(az.CreateTeamRequest(org_id=org, name="crew"))).team
    users: dict[Blueprint, str] = {Blueprint.OWNER: owner}
    for blueprint, (name, kind) in _BLUEPRINT_NAMES.items():
        role = roles[name]
        assert role.blueprint == kind
        expected = blueprint_grants(blueprint, catalog)
        assert {(p.permission, _SCOPE_OF[p.scope]) for p in role.permissions} == {
            (str(g.key), g.scope) for g in expected
        }, name
        if blueprint is not Blueprint.OWNER:
            users[blueprint] = str(uuid.uuid4())
            await _service_assign(authz, org, role.role_id, users[blueprint])
        await service.AddTeamMember(
            az.AddTeamMemberRequest(org_id=org, team_id=team.team_id, user_id=users[blueprint])
        )
    stranger, elsewhere = str(uuid.uuid4()), str(uuid.uuid4())
    # (owner, team) of each kind of resource and the grant scopes that reach it.
    resources: dict[str, tuple[Any, set[Scope]]] = {
        "own": (lambda u: (u, ""), {Scope.OWN, Scope.TEAM, Scope.ANY}),
        "team": (lambda u: (stranger, team.team_id), {Scope.TEAM, Scope.ANY}),
        "other": (lambda u: (stranger, ""), {Scope.ANY}),
    }
    assert sorted(roles) == sorted(n for n, _ in _BLUEPRINT_NAMES.values())
    checked = allowed_count = 0
    for blueprint, user in users.items():
        name, _ = _BLUEPRINT_NAMES[blueprint]
        grants = blueprint_grants(blueprint, catalog)
        stub, meta, _ = _as(authz, org, user)
        batch: list[az.CheckBatchItem] = []
        batch_expected: list[bool] = []
        for spec in catalog:
            held = {g.scope for g in grants if g.key == spec.key}
            for where, (make, reach) in resources.items():
                owner_id, team_id = make(user)
                decision = await _check(stub, meta, str(spec.key), owner=owner_id, team=team_id)
                expect = bool(held & reach)
                label = f"{name} {spec.key} on {where} resource"
                assert decision.allowed is expect, label
                assert decision.dangerous is is_dangerous(spec.key, spec.dangerous, frozenset())
                if expect:
                    widest = max(held, key=lambda s: s.rank)
                    assert decision.grant.permission == az.ScopedPermission(
                        permission=str(spec.key), scope=_SCOPE_PROTO[widest]
                    ), label
                    assert decision.grant.role_id == roles[name].role_id, label
                    assert decision.grant.source == az.GRANT_SOURCE_ROLE_ASSIGNMENT, label
                    allowed_count += 1
                else:
                    assert decision.deny_reason == (
                        az.DENY_REASON_SCOPE_MISMATCH if held else az.DENY_REASON_NO_GRANT
                    ), label
                checked += 1
                batch.append(
                    az.CheckBatchItem(
                        permission=str(spec.key),
                        resource=az.Resource(type="x", id="1", owner_id=owner_id, team_id=team_id),
                    )
                )
                batch_expected.append(expect)
            # In the same batch: a resource of a team the user is not in, and one of nobody in
            # no team; only `:any` reaches them.
            for owner_id, team_id in ((stranger, elsewhere), ("", "")):
                batch.append(
                    az.CheckBatchItem(
                        permission=str(spec.key),
                        resource=az.Resource(type="x", id="2", owner_id=owner_id, team_id=team_id),
                    )
                )
                batch_expected.append(Scope.ANY in held)
        together = await stub.CheckBatch(
            az.CheckBatchRequest(items=batch, consistency=FRESH), metadata=meta
        )
        assert [d.allowed for d in together.decisions] == batch_expected, name
    assert checked == len(_BLUEPRINT_NAMES) * len(catalog) * len(resources)
    assert 0 < allowed_count < checked
    # Nothing leaks across orgs: the Owner of this org gets nothing in another org.
    other_org = str(uuid.uuid4())
    await authz.seed_org(other_org, str(uuid.uuid4()))
    stub, meta, _ = _as(authz, org, owner)
    reply = await stub.Check(
        az.CheckRequest(
            permission="x.doc.read",
            resource=az.Resource(type="x.doc", id="1", org_id=other_org, owner_id=owner),
        ),
        metadata=meta,
    )
    assert reply.decision.deny_reason == az.DENY_REASON_OTHER_ORG


# --- 8. Z7 audit of every write ---------------------------------------------------------------


async def _outbox(db: AsyncConnection) -> dict[Any, tuple[str, bytes]]:
    rows = await db.execute(text("SELECT id, subject, payload FROM authz.outbox"))
    return {row.id: (row.subject, row.payload) for row in rows}


async def _audits(db: AsyncConnection, action: str) -> list[audit_pb2.AuditEvent]:
    rows = await db.execute(
        text("SELECT payload FROM authz.outbox WHERE subject = :s"), {"s": f"audit.authz.{action}"}
    )
    return [audit_pb2.AuditEvent.FromString(p) for p in rows.scalars()]


def _diff(event: audit_pb2.AuditEvent) -> dict[str, Any]:
    return json_format.MessageToDict(event.diff)


class _Trail:
    """The audit event (kernel helper) and the PolicyChanged announcement of each write."""

    def __init__(self, db: AsyncConnection, org: str, principal: principal_pb2.Principal) -> None:
        self._db = db
        self._org = org
        self._principal = principal
        self._audits = AuditEvents(db, "authz")
        self._seen: set[Any] = set()

    async def start(self) -> None:
        await self._audits.mark()
        self._seen = set(await _outbox(self._db))

    async def _policy(self) -> list[tuple[str, bytes]]:
        rows = await _outbox(self._db)
        fresh = [v for k, v in rows.items() if k not in self._seen]
        self._seen = set(rows)
        return [(s, p) for s, p in fresh if not s.startswith("audit.")]

    async def expect_nothing(self, what: str) -> None:
        await self._audits.expect_none(what)
        assert await self._policy() == [], what

    async def expect(self, action: str, resource_id: str, revision: int) -> audit_pb2.AuditEvent:
        event = await self._audits.expect_one(
            action,
            org_id=self._org,
            resource_id=resource_id,
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=self._principal.actor_id,
            session_id=self._principal.session_id,
            producer="authz",
            diff={"revision": revision},
        )
        assert uuid.UUID(event.decision_id), action
        policy = await self._policy()
        assert len(policy) == 1, (action, [s for s, _ in policy])
        subject, payload = policy[0]
        assert subject == f"authz.policy.changed.{self._org}", action
        changed = authz_events.PolicyChanged.FromString(payload)
        assert changed.metadata.org_id == self._org, action
        assert changed.metadata.revision == revision, action
        assert changed.metadata.decision_id == event.decision_id, action
        return event


async def test_z7_every_user_write_is_audited_once_with_its_policy_change(
    authz: Authz, db_connection: AsyncConnection
) -> None:
    await _register(authz, DOCS)
    org, owner = str(uuid.uuid4()), str(uuid.uuid4())
    await authz.seed_org(org, owner)
    stub, meta, principal = _as(authz, org, owner)
    trail = _Trail(db_connection, org, principal)
    await trail.start()
    user = str(uuid.uuid4())
    revisions: list[int] = []

    role = await stub.CreateRole(
        az.CreateRoleRequest(name="editor", permissions=[READ_ANY]), metadata=meta
    )
    role_id = role.role.role_id
    event = await trail.expect("authz.role.create", role_id, role.revision)
    assert _diff(event)["grants_added"] == ["x.doc.read:any"]
    revisions.append(role.revision)

    updated = await stub.UpdateRole(
        az.UpdateRoleRequest(
            role_id=role_id,
            permissions=az.ScopedPermissionList(permissions=[READ_OWN, UPDATE_OWN]),
        ),
        metadata=meta,
    )
    event = await trail.expect("authz.role.update", role_id, updated.revision)
    assert _diff(event)["grants_added"] == ["x.doc.read:own", "x.doc.update:own"]
    assert _diff(event)["grants_removed"] == ["x.doc.read:any"]
    revisions.append(updated.revision)

    assigned = await stub.AssignRole(
        az.AssignRoleRequest(role_id=role_id, user_id=user), metadata=meta
    )
    event = await trail.expect(
        "authz.role.assign", assigned.assignment.assignment_id, assigned.revision
    )
    assert event.diff["user_id"] == user
    assert event.diff["granted_by"] == f"user:{owner}"
    assert event.diff["dangerous"] is True
    revisions.append(assigned.revision)
    await stub.AssignRole(az.AssignRoleRequest(role_id=role_id, user_id=user), metadata=meta)
    await trail.expect_nothing("repeated AssignRole")

    unassigned = await stub.UnassignRole(
        az.UnassignRoleRequest(role_id=role_id, user_id=user), metadata=meta
    )
    event = await trail.expect(
        "authz.role.unassign", assigned.assignment.assignment_id, unassigned.revision
    )
    assert _diff(event)["grants_removed"] == ["x.doc.read:own", "x.doc.update:own"]
    revisions.append(unassigned.revision)
    await stub.UnassignRole(az.UnassignRoleRequest(role_id=role_id, user_id=user), metadata=meta)
    await trail.expect_nothing("repeated UnassignRole")

    team = await stub.CreateTeam(az.CreateTeamRequest(name="alpha"), metadata=meta)
    team_id = team.team.team_id
    await trail.expect("authz.team.create", team_id, team.revision)
    revisions.append(team.revision)
    renamed = await stub.UpdateTeam(
        az.UpdateTeamRequest(team_id=team_id, name="beta"), metadata=meta
    )
    await trail.expect("authz.team.update", team_id, renamed.revision)
    revisions.append(renamed.revision)
    member = await stub.AddTeamMember(
        az.AddTeamMemberRequest(team_id=team_id, user_id=user), metadata=meta
    )
    await trail.expect("authz.team.addMember", f"{team_id}/{user}", member.revision)
    revisions.append(member.revision)
    await stub.AddTeamMember(az.AddTeamMemberRequest(team_id=team_id, user_id=user), metadata=meta)
    await trail.expect_nothing("repeated AddTeamMember")
    left = await stub.RemoveTeamMember(
        az.RemoveTeamMemberRequest(team_id=team_id, user_id=user), metadata=meta
    )
    await trail.expect("authz.team.removeMember", f"{team_id}/{user}", left.revision)
    revisions.append(left.revision)
    await stub.RemoveTeamMember(
        az.RemoveTeamMemberRequest(team_id=team_id, user_id=user), metadata=meta
    )
    await trail.expect_nothing("repeated RemoveTeamMember")
    dropped = await stub.DeleteTeam(az.DeleteTeamRequest(team_id=team_id), metadata=meta)
    await trail.expect("authz.team.delete", team_id, dropped.revision)
    revisions.append(dropped.revision)

    kind = await stub.CreateUserType(
        az.CreateUserTypeRequest(name="staff", default_role_id=role_id), metadata=meta
    )
    kind_id = kind.user_type.user_type_id
    await trail.expect("authz.userType.create", kind_id, kind.revision)
    revisions.append(kind.revision)
    retyped = await stub.UpdateUserType(
        az.UpdateUserTypeRequest(user_type_id=kind_id, default_role_id=""), metadata=meta
    )
    event = await trail.expect("authz.userType.update", kind_id, retyped.revision)
    assert _diff(event)["default_role_id"] == [role_id, ""]
    revisions.append(retyped.revision)
    typed = await stub.AssignUserType(
        az.AssignUserTypeRequest(user_id=user, user_type_id=kind_id), metadata=meta
    )
    event = await trail.expect("authz.userType.assign", kind_id, typed.revision)
    assert event.diff["user_id"] == user
    revisions.append(typed.revision)
    await stub.AssignUserType(
        az.AssignUserTypeRequest(user_id=user, user_type_id=kind_id), metadata=meta
    )
    await trail.expect_nothing("repeated AssignUserType")
    untyped = await stub.AssignUserType(
        az.AssignUserTypeRequest(user_id=user, user_type_id=""), metadata=meta
    )
    await trail.expect("authz.userType.assign", kind_id, untyped.revision)
    revisions.append(untyped.revision)
    removed_type = await stub.DeleteUserType(
        az.DeleteUserTypeRequest(user_type_id=kind_id), metadata=meta
    )
    await trail.expect("authz.userType.delete", kind_id, removed_type.revision)
    revisions.append(removed_type.revision)

    marked = await stub.SetDangerousActions(
        az.SetDangerousActionsRequest(permissions=["x.doc.read"]), metadata=meta
    )
    event = await trail.expect("authz.dangerousAction.update", org, marked.revision)
    assert _diff(event)["after"] == ["x.doc.read"]
    revisions.append(marked.revision)
    await stub.SetDangerousActions(
        az.SetDangerousActionsRequest(permissions=["x.doc.read"]), metadata=meta
    )
    await trail.expect_nothing("repeated SetDangerousActions")

    deleted = await stub.DeleteRole(az.DeleteRoleRequest(role_id=role_id), metadata=meta)
    event = await trail.expect("authz.role.delete", role_id, deleted.revision)
    assert _diff(event)["grants_removed"] == ["x.doc.read:own", "x.doc.update:own"]
    revisions.append(deleted.revision)

    assert revisions == sorted(set(revisions))
    # Refused writes leave no trace.
    plain_stub, plain_meta, _ = _as(authz, org)
    refused = plain_stub.CreateRole(az.CreateRoleRequest(name="nope"), metadata=plain_meta)
    assert await _code(refused) == grpc.StatusCode.PERMISSION_DENIED
    taken = stub.CreateRole(az.CreateRoleRequest(name="Owner"), metadata=meta)
    assert await _code(taken) == grpc.StatusCode.ALREADY_EXISTS
    await trail.expect_nothing("refused writes")
