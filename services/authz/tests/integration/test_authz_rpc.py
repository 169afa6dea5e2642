"""Authz over gRPC against real PostgreSQL: catalog registration, roles, assignments, Check and
PlanList (Z1, Z4, Z5, Z6, Z7)."""

from __future__ import annotations

import random
import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from sqlalchemy import ColumnElement, and_, column, false, or_, select, table, text, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.proto.audit.v1 import events_pb2
from helios.proto.authz.v1 import authz_pb2 as az
from helios.proto.common.v1 import principal_pb2

from .conftest import Authz

ORG_A, ORG_B = str(uuid.uuid4()), str(uuid.uuid4())
CATALOG = [
    az.PermissionDefinition(
        key="x.doc.read",
        description="Read a document.",
        allowed_scopes=[az.SCOPE_OWN, az.SCOPE_TEAM, az.SCOPE_ANY],
    ),
    az.PermissionDefinition(
        key="x.doc.update",
        description="Change a document.",
        allowed_scopes=[az.SCOPE_OWN, az.SCOPE_ANY],
    ),
    az.PermissionDefinition(
        key="x.doc.delete", description="Delete a document.", allowed_scopes=[az.SCOPE_ANY]
    ),
]
READ_ANY = az.ScopedPermission(permission="x.doc.read", scope=az.SCOPE_ANY)
UPDATE_OWN = az.ScopedPermission(permission="x.doc.update", scope=az.SCOPE_OWN)


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


async def _register(authz: Authz) -> az.RegisterPermissionsResponse:
    reply: az.RegisterPermissionsResponse = await authz.as_service("identity").RegisterPermissions(
        az.RegisterPermissionsRequest(service="identity", permissions=CATALOG)
    )
    return reply


async def _setup(authz: Authz) -> tuple[str, az.CreateRoleResponse, az.AssignRoleResponse]:
    """The catalog, a role `editor` (read:any, update:own) in org A and a user U holding it."""
    await _register(authz)
    user = str(uuid.uuid4())
    stub, admin = authz.as_admin(ORG_A)
    role = await stub.CreateRole(
        az.CreateRoleRequest(name="editor", permissions=[READ_ANY, UPDATE_OWN]), metadata=admin
    )
    assigned = await stub.AssignRole(
        az.AssignRoleRequest(role_id=role.role.role_id, user_id=user), metadata=admin
    )
    return user, role, assigned


async def _check(
    authz: Authz, user: str, permission: str, org: str, owner: str = ""
) -> az.Decision:
    stub, metadata = authz.as_user(ORG_A, user)
    resource = az.Resource(type="x.doc", id=str(uuid.uuid4()), org_id=org, owner_id=owner)
    reply = await stub.Check(
        az.CheckRequest(permission=permission, resource=resource), metadata=metadata
    )
    decision: az.Decision = reply.decision
    return decision


async def test_z1_services_register_their_catalog_idempotently(authz: Authz) -> None:
    first = await _register(authz)
    assert sorted(first.added_keys) == ["x.doc.delete", "x.doc.read", "x.doc.update"]
    assert first.revision > 0
    again = await _register(authz)
    assert list(again.added_keys) == []
    assert again.revision == first.revision

    changed = az.PermissionDefinition(key="x.doc.read", description="Something else.")
    service = authz.as_service("identity")
    assert (
        await _code(
            service.RegisterPermissions(
                az.RegisterPermissionsRequest(service="identity", permissions=[changed])
            )
        )
        == grpc.StatusCode.ALREADY_EXISTS
    )
    taken = authz.as_service("keyvault").RegisterPermissions(
        az.RegisterPermissionsRequest(service="keyvault", permissions=[CATALOG[0]])
    )
    assert await _code(taken) == grpc.StatusCode.ALREADY_EXISTS
    spoofed = authz.as_service("keyvault").RegisterPermissions(
        az.RegisterPermissionsRequest(service="identity", permissions=CATALOG)
    )
    assert await _code(spoofed) == grpc.StatusCode.PERMISSION_DENIED
    outsider = authz.as_service("client").RegisterPermissions(
        az.RegisterPermissionsRequest(service="client", permissions=CATALOG)
    )
    assert await _code(outsider) == grpc.StatusCode.PERMISSION_DENIED
    stub, user = authz.as_user(ORG_A)
    as_user = stub.RegisterPermissions(
        az.RegisterPermissionsRequest(service="gateway", permissions=CATALOG), metadata=user
    )
    assert await _code(as_user) == grpc.StatusCode.PERMISSION_DENIED
    malformed = service.RegisterPermissions(
        az.RegisterPermissionsRequest(
            service="identity",
            permissions=[az.PermissionDefinition(key="x.doc", description="Bad.")],
        )
    )
    assert await _code(malformed) == grpc.StatusCode.INVALID_ARGUMENT

    plain = stub.ListPermissions(az.ListPermissionsRequest(service="identity"), metadata=user)
    assert await _code(plain) == grpc.StatusCode.PERMISSION_DENIED
    stub, user, _ = await authz.org_owner(ORG_A)
    listed = await stub.ListPermissions(
        az.ListPermissionsRequest(service="identity"), metadata=user
    )
    by_key = {p.key: p for p in listed.permissions}
    assert list(by_key) == ["x.doc.delete", "x.doc.read", "x.doc.update"]
    assert by_key["x.doc.read"].description == "Read a document."
    assert list(by_key["x.doc.update"].allowed_scopes) == [az.SCOPE_OWN, az.SCOPE_ANY]
    assert by_key["x.doc.read"].service == "identity"
    assert by_key["x.doc.delete"].dangerous
    assert not by_key["x.doc.read"].dangerous
    assert listed.revision == first.revision
    paged = await stub.ListPermissions(
        az.ListPermissionsRequest(service="identity", page_size=2), metadata=user
    )
    rest = await stub.ListPermissions(
        az.ListPermissionsRequest(
            service="identity", page_size=2, page_token=paged.next_page_token
        ),
        metadata=user,
    )
    assert [p.key for p in [*paged.permissions, *rest.permissions]] == list(by_key)
    assert rest.next_page_token == ""


async def test_z4_z5_check_follows_role_grants_scope_and_tenancy(authz: Authz) -> None:
    user, role, assigned = await _setup(authz)
    other = str(uuid.uuid4())

    read = await _check(authz, user, "x.doc.read", ORG_A, owner=other)
    assert read.allowed
    assert read.revision == assigned.revision
    assert read.grant.role_id == role.role.role_id
    assert read.grant.role_name == "editor"
    assert read.grant.assignment_id == assigned.assignment.assignment_id
    assert read.grant.permission == READ_ANY
    assert read.grant.source == az.GRANT_SOURCE_ROLE_ASSIGNMENT
    assert uuid.UUID(read.decision_id)
    assert not read.dangerous

    own = await _check(authz, user, "x.doc.update", ORG_A, owner=user)
    assert own.allowed
    assert own.grant.permission == UPDATE_OWN
    foreign = await _check(authz, user, "x.doc.update", ORG_A, owner=other)
    assert not foreign.allowed
    assert foreign.deny_reason == az.DENY_REASON_SCOPE_MISMATCH
    assert not foreign.HasField("grant")
    unowned = await _check(authz, user, "x.doc.update", ORG_A)
    assert not unowned.allowed

    for permission in ("x.doc.read", "x.doc.update", "x.doc.delete"):
        for owner in (user, other, ""):
            elsewhere = await _check(authz, user, permission, ORG_B, owner=owner)
            assert not elsewhere.allowed
            assert elsewhere.deny_reason == az.DENY_REASON_OTHER_ORG

    delete = await _check(authz, user, "x.doc.delete", ORG_A, owner=user)
    assert not delete.allowed
    assert delete.deny_reason == az.DENY_REASON_NO_GRANT
    assert delete.dangerous  # D1: every delete is dangerous, whatever the spec says
    unknown = await _check(authz, user, "x.doc.publish", ORG_A, owner=user)
    assert not unknown.allowed
    assert unknown.deny_reason == az.DENY_REASON_UNKNOWN_PERMISSION
    stranger = await _check(authz, str(uuid.uuid4()), "x.doc.read", ORG_A)
    assert not stranger.allowed
    assert stranger.deny_reason == az.DENY_REASON_NO_GRANT

    stub, metadata = authz.as_user(ORG_A, user)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Check(az.CheckRequest(permission="x.doc"), metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "three dot-separated parts" in (caught.value.details() or "")
    somebody_else = stub.Check(
        az.CheckRequest(
            principal=authz.principal(ORG_A), permission="x.doc.read", resource=az.Resource()
        ),
        metadata=metadata,
    )
    assert await _code(somebody_else) == grpc.StatusCode.PERMISSION_DENIED

    # A Helios service asks on behalf of the principal it received: same answers.
    gateway = authz.as_service("gateway")
    on_behalf = await gateway.Check(
        az.CheckRequest(
            principal=authz.principal(ORG_A, user),
            permission="x.doc.update",
            resource=az.Resource(type="x.doc", id="1", owner_id=user),
        )
    )
    assert on_behalf.decision.allowed
    no_principal = gateway.Check(az.CheckRequest(permission="x.doc.read"))
    assert await _code(no_principal) == grpc.StatusCode.INVALID_ARGUMENT


async def test_z6_platform_grants_are_refused_by_the_api_and_the_database(
    authz: Authz, db_connection: AsyncConnection
) -> None:
    _, role, _ = await _setup(authz)
    stub, admin = authz.as_admin(ORG_A)
    platform = az.ScopedPermission(permission="platform.org.delete", scope=az.SCOPE_ANY)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateRole(
            az.CreateRoleRequest(name="root-ish", permissions=[READ_ANY, platform]),
            metadata=admin,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "platform" in (caught.value.details() or "")

    bad_scope = az.ScopedPermission(permission="x.doc.update", scope=az.SCOPE_TEAM)
    unknown = az.ScopedPermission(permission="x.doc.publish", scope=az.SCOPE_ANY)
    no_scope = az.ScopedPermission(permission="x.doc.read")
    for grants in ([bad_scope], [unknown], [no_scope]):
        refused = stub.CreateRole(
            az.CreateRoleRequest(name="odd", permissions=grants), metadata=admin
        )
        assert await _code(refused) == grpc.StatusCode.INVALID_ARGUMENT
    duplicate = stub.CreateRole(az.CreateRoleRequest(name="editor"), metadata=admin)
    assert await _code(duplicate) == grpc.StatusCode.ALREADY_EXISTS
    user_stub, user_meta = authz.as_user(ORG_A)
    by_user = user_stub.CreateRole(az.CreateRoleRequest(name="mine"), metadata=user_meta)
    assert await _code(by_user) == grpc.StatusCode.PERMISSION_DENIED
    by_user_assign = user_stub.AssignRole(
        az.AssignRoleRequest(role_id=role.role.role_id, user_id="someone"), metadata=user_meta
    )
    assert await _code(by_user_assign) == grpc.StatusCode.PERMISSION_DENIED
    stranger = authz.as_service("client").CreateRole(az.CreateRoleRequest(org_id=ORG_A, name="y"))
    assert await _code(stranger) == grpc.StatusCode.PERMISSION_DENIED

    with pytest.raises(DBAPIError, match="platform"):
        async with db_connection.begin_nested():
            await db_connection.execute(
                text(
                    "INSERT INTO authz.role_grants (role_id, permission_key, scope, added_revision)"
                    " VALUES (:role, 'platform.org.delete', 'any', 1)"
                ),
                {"role": role.role.role_id},
            )
    stored = await db_connection.execute(
        text("SELECT permission_key FROM authz.role_grants WHERE role_id = :role"),
        {"role": role.role.role_id},
    )
    assert sorted(stored.scalars()) == ["x.doc.read", "x.doc.update"]


async def test_z7_writes_return_increasing_revisions_and_are_audited(
    authz: Authz, db_connection: AsyncConnection
) -> None:
    await _register(authz)
    stub, admin = authz.as_admin(ORG_A)
    user = str(uuid.uuid4())
    first = await stub.CreateRole(
        az.CreateRoleRequest(name="reader", permissions=[READ_ANY]), metadata=admin
    )
    second = await stub.CreateRole(
        az.CreateRoleRequest(name="editor", permissions=[READ_ANY, UPDATE_OWN]), metadata=admin
    )
    assigned = await stub.AssignRole(
        az.AssignRoleRequest(role_id=second.role.role_id, user_id=user), metadata=admin
    )
    assert 0 < first.revision < second.revision < assigned.revision
    assert first.role.revision == first.revision
    assert assigned.assignment.revision == assigned.revision
    again = await stub.AssignRole(
        az.AssignRoleRequest(role_id=second.role.role_id, user_id=user), metadata=admin
    )
    assert again.assignment == assigned.assignment
    assert again.revision == assigned.revision
    decision = await _check(authz, user, "x.doc.read", ORG_A)
    assert decision.allowed
    assert decision.revision == assigned.revision

    stub_b, admin_b = authz.as_admin(ORG_B)
    foreign = stub_b.AssignRole(
        az.AssignRoleRequest(role_id=second.role.role_id, user_id=user), metadata=admin_b
    )
    assert await _code(foreign) == grpc.StatusCode.NOT_FOUND
    bad = stub.AssignRole(az.AssignRoleRequest(role_id="nope", user_id=user), metadata=admin)
    assert await _code(bad) == grpc.StatusCode.INVALID_ARGUMENT

    payloads = (
        (
            await db_connection.execute(
                text("SELECT payload FROM authz.outbox WHERE subject LIKE 'audit.%'")
            )
        )
        .scalars()
        .all()
    )
    events = [events_pb2.AuditEvent.FromString(p) for p in payloads]
    by_action: dict[str, list[events_pb2.AuditEvent]] = {}
    for event in events:
        by_action.setdefault(event.action, []).append(event)
    created = by_action["authz.role.create"]
    assert len(created) == 2
    assert {e.resource_id for e in created} == {first.role.role_id, second.role.role_id}
    editor = next(e for e in created if e.resource_id == second.role.role_id)
    assert json_format.MessageToDict(editor.diff)["grants_added"] == [
        "x.doc.read:any",
        "x.doc.update:own",
    ]
    assert editor.org_id == ORG_A
    assert editor.producer == "authz"
    (assign,) = by_action["authz.role.assign"]
    assert assign.resource_id == assigned.assignment.assignment_id
    assert assigned.assignment.granted_by == "service:identity"
    assert assign.actor_type == principal_pb2.ACTOR_TYPE_SYSTEM
    assert assign.producer == "authz"
    assert assign.diff["granted_by"] == "service:identity"
    assert assign.diff["user_id"] == user
    assert assign.diff["dangerous"] is True
    assert assign.diff["dangerous_class"] == "role assignment"
    registered = by_action["authz.permission.register"]
    assert sorted(e.resource_id for e in registered) == ["authz", "identity"]  # rows unordered


_DOCS = table("plan_docs", column("id"), column("org_id"), column("owner_id"), column("team_id"))
_COLUMNS = {
    az.FILTER_FIELD_ORG_ID: _DOCS.c.org_id,
    az.FILTER_FIELD_OWNER_ID: _DOCS.c.owner_id,
    az.FILTER_FIELD_TEAM_ID: _DOCS.c.team_id,
}


def _where(node: az.FilterNode) -> ColumnElement[bool]:
    """The SQL of a filter tree, as the proto defines it."""
    which = node.WhichOneof("node")
    if which == "leaf":
        values = list(node.leaf.values)
        return _COLUMNS[node.leaf.field].in_(values) if values else false()
    if which == "all_of":
        return and_(true(), *[_where(n) for n in node.all_of.nodes])
    return or_(false(), *[_where(n) for n in node.any_of.nodes])


async def test_z5_plan_list_in_sql_returns_exactly_the_rows_check_allows(
    authz: Authz, db_connection: AsyncConnection
) -> None:
    user, _, assigned = await _setup(authz)
    rng = random.Random(5)
    others = [str(uuid.uuid4()) for _ in range(3)]
    docs: list[dict[str, Any]] = [
        {
            "id": str(i),
            "org_id": rng.choice([ORG_A, ORG_A, ORG_B]),
            "owner_id": rng.choice([user, user, None, *others]),
            "team_id": rng.choice([None, "t1", "t2"]),
        }
        for i in range(50)
    ]
    await db_connection.execute(
        text("CREATE TEMP TABLE plan_docs (id text, org_id text, owner_id text, team_id text)")
    )
    await db_connection.execute(
        text("INSERT INTO plan_docs VALUES (:id, :org_id, :owner_id, :team_id)"), docs
    )
    stub, metadata = authz.as_user(ORG_A, user)
    nobody_stub, nobody = authz.as_user(ORG_A)
    cases = [
        (stub, metadata, "x.doc.read", az.PLAN_KIND_CONDITIONAL),
        (stub, metadata, "x.doc.update", az.PLAN_KIND_CONDITIONAL),
        (stub, metadata, "x.doc.delete", az.PLAN_KIND_ALWAYS_DENIED),
        (stub, metadata, "x.doc.publish", az.PLAN_KIND_ALWAYS_DENIED),
        (nobody_stub, nobody, "x.doc.read", az.PLAN_KIND_ALWAYS_DENIED),
    ]
    for caller, meta, permission, kind in cases:
        plan = await caller.PlanList(
            az.PlanListRequest(permission=permission, resource_type="x.doc"), metadata=meta
        )
        assert plan.kind == kind, permission
        assert plan.revision == assigned.revision
        assert uuid.UUID(plan.decision_id)
        if kind == az.PLAN_KIND_CONDITIONAL:
            query = select(_DOCS.c.id).where(_where(plan.filter))
            listed = set((await db_connection.execute(query)).scalars())
        else:
            assert not plan.HasField("filter")
            listed = set()
        allowed = set()
        for doc in docs:
            reply = await caller.Check(
                az.CheckRequest(
                    permission=permission,
                    resource=az.Resource(
                        type="x.doc",
                        id=doc["id"],
                        org_id=doc["org_id"],
                        owner_id=doc["owner_id"] or "",
                        team_id=doc["team_id"] or "",
                    ),
                ),
                metadata=meta,
            )
            if reply.decision.allowed:
                allowed.add(doc["id"])
        assert listed == allowed, permission
        if permission == "x.doc.read" and caller is stub:
            assert allowed == {d["id"] for d in docs if d["org_id"] == ORG_A}
        if permission == "x.doc.update":
            expected = {d["id"] for d in docs if d["org_id"] == ORG_A and d["owner_id"] == user}
            assert allowed == expected
            assert expected
    malformed = stub.PlanList(
        az.PlanListRequest(permission="x..read", resource_type="x.doc"), metadata=metadata
    )
    assert await _code(malformed) == grpc.StatusCode.INVALID_ARGUMENT
