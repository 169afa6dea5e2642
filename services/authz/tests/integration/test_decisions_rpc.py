"""Decision RPCs over gRPC against real PostgreSQL and NATS: Check and CheckBatch (Z1), tenancy
(Z1 acceptance), AI principals (I2), Explain at any revision (Z7 acceptance), read consistency
across replicas (Z1 acceptance), subject snapshots and org seeding through NATS (Z3)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from nats.js.errors import NotFoundError as JsNotFoundError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.authz.events.org_seeder import ORG_CREATED_SUBJECT, OrgSeeder
from helios.authz.store.decisions import BatchedDecisionLog
from helios.kernel.bus import AUDIT_STREAM, Bus, ensure_audit_stream
from helios.kernel.clients import call_metadata
from helios.kernel.testing.servers import ThrowawayNats
from helios.kernel.tls import CertFiles
from helios.proto.audit.v1 import events_pb2 as audit_pb2
from helios.proto.authz.v1 import authz_pb2 as az
from helios.proto.common.v1 import principal_pb2

from .conftest import Authz
from .replicas import Replicas

ORG_A, ORG_B = str(uuid.uuid4()), str(uuid.uuid4())
_ALL = [az.SCOPE_OWN, az.SCOPE_TEAM, az.SCOPE_ANY]
CATALOG = [
    az.PermissionDefinition(key="x.doc.read", description="Read a document.", allowed_scopes=_ALL),
    az.PermissionDefinition(
        key="x.doc.update",
        description="Change a document.",
        allowed_scopes=[az.SCOPE_OWN, az.SCOPE_ANY],
    ),
    az.PermissionDefinition(
        key="x.doc.share",
        description="Share a document.",
        allowed_scopes=[az.SCOPE_OWN, az.SCOPE_TEAM],
    ),
    az.PermissionDefinition(
        key="x.doc.delete", description="Delete a document.", allowed_scopes=[az.SCOPE_ANY]
    ),
    az.PermissionDefinition(key="x.note.list", description="List notes.", allowed_scopes=_ALL),
    # Never for an AI (I2), whatever its user holds.
    az.PermissionDefinition(key="x.role.assign", description="Give a role."),
    az.PermissionDefinition(key="x.permission.grant", description="Grant a permission."),
    az.PermissionDefinition(key="x.user.impersonate", description="Act as another user."),
    az.PermissionDefinition(key="x.apiKey.create", description="Create an API key."),
]
AI_FORBIDDEN_KEYS = ["x.role.assign", "x.permission.grant", "x.user.impersonate", "x.apiKey.create"]
READ_ANY = az.ScopedPermission(permission="x.doc.read", scope=az.SCOPE_ANY)
UPDATE_OWN = az.ScopedPermission(permission="x.doc.update", scope=az.SCOPE_OWN)
SHARE_TEAM = az.ScopedPermission(permission="x.doc.share", scope=az.SCOPE_TEAM)
FRESH = az.Consistency(fully_consistent=True)
POLL_SECONDS = 5.0


# --- helpers ------------------------------------------------------------------------------------


async def _code(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def _register(authz: Authz, permissions: list[az.PermissionDefinition] | None = None) -> int:
    reply = await authz.as_service("identity").RegisterPermissions(
        az.RegisterPermissionsRequest(service="identity", permissions=permissions or CATALOG)
    )
    return int(reply.revision)


async def _role(authz: Authz, org: str, name: str, *grants: az.ScopedPermission) -> str:
    stub, admin = authz.as_admin(org)
    reply = await stub.CreateRole(
        az.CreateRoleRequest(name=name, permissions=list(grants)), metadata=admin
    )
    return str(reply.role.role_id)


async def _assign(authz: Authz, org: str, role_id: str, user: str) -> az.AssignRoleResponse:
    stub, admin = authz.as_admin(org)
    reply: az.AssignRoleResponse = await stub.AssignRole(
        az.AssignRoleRequest(role_id=role_id, user_id=user), metadata=admin
    )
    return reply


async def _unassign(authz: Authz, org: str, role_id: str, user: str) -> int:
    reply = await authz.as_service("identity").UnassignRole(
        az.UnassignRoleRequest(org_id=org, role_id=role_id, user_id=user)
    )
    return int(reply.revision)


def _doc(org: str = ORG_A, owner: str = "", team: str = "") -> az.Resource:
    return az.Resource(type="x.doc", id=str(uuid.uuid4()), org_id=org, owner_id=owner, team_id=team)


async def _check(
    authz: Authz,
    user: str,
    permission: str,
    resource: az.Resource | None = None,
    consistency: az.Consistency | None = None,
    org: str = ORG_A,
) -> az.Decision:
    stub, metadata = authz.as_user(org, user)
    request = az.CheckRequest(permission=permission, resource=resource or _doc(org))
    if consistency is not None:
        request.consistency.CopyFrom(consistency)
    reply = await stub.Check(request, metadata=metadata)
    decision: az.Decision = reply.decision
    return decision


def _ai(org: str, user: str) -> principal_pb2.Principal:
    return principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_AI,
        actor_id=user,
        org_id=org,
        session_id=str(uuid.uuid4()),
    )


def _as_ai(authz: Authz, org: str, user: str) -> tuple[Any, Any]:
    """A stub and metadata of an AI session acting for `user` (assertion signed like identity)."""
    return authz.as_service("gateway"), call_metadata(assertion=authz.signer.sign(_ai(org, user)))


def _steps(reply: az.ExplainResponse, kind: int) -> list[az.ExplainStep]:
    return [s for s in reply.steps if s.kind == kind]


# --- Z1: Check and CheckBatch inputs -------------------------------------------------------------


async def test_z1_check_denies_unknown_permissions_and_refuses_bad_requests(authz: Authz) -> None:
    await _register(authz)
    user = str(uuid.uuid4())
    await _assign(authz, ORG_A, await _role(authz, ORG_A, "reader", READ_ANY), user)

    unknown = await _check(authz, user, "x.doc.publish")
    assert not unknown.allowed
    assert unknown.deny_reason == az.DENY_REASON_UNKNOWN_PERMISSION
    assert uuid.UUID(unknown.decision_id)
    assert not unknown.HasField("grant")
    known = await _check(authz, user, "x.doc.read")
    assert known.allowed
    assert known.deny_reason == az.DENY_REASON_UNSPECIFIED

    stub, metadata = authz.as_user(ORG_A, user)
    malformed = {
        "": "empty",
        "x.doc": "three dot-separated parts",
        "x.doc.read.now": "three dot-separated parts",
        "X.doc.read": "module 'X' must start with a lowercase letter",
        "x.doc.re-ad": "verb 're-ad'",
        "x.doc.read:any": "verb 'read:any'",
        "x.doc." + "r" * 200: "longer than 200 characters",
    }
    for key, says in malformed.items():
        error = await _code(stub.Check(az.CheckRequest(permission=key), metadata=metadata))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, key
        assert says in (error.details() or ""), (key, error.details())

    gateway = authz.as_service("gateway")
    missing = await _code(gateway.Check(az.CheckRequest(permission="x.doc.read")))
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "principal" in (missing.details() or "")
    for half in (
        principal_pb2.Principal(actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=user),
        principal_pb2.Principal(actor_type=principal_pb2.ACTOR_TYPE_USER, org_id=ORG_A),
        principal_pb2.Principal(actor_id=user, org_id=ORG_A),
    ):
        incomplete = gateway.Check(az.CheckRequest(principal=half, permission="x.doc.read"))
        assert (await _code(incomplete)).code() == grpc.StatusCode.INVALID_ARGUMENT
    on_behalf = await gateway.Check(
        az.CheckRequest(principal=authz.principal(ORG_A, user), permission="x.doc.read")
    )
    assert on_behalf.decision.allowed

    for other in (authz.principal(ORG_A), authz.principal(ORG_B, user)):
        nosy = stub.Check(
            az.CheckRequest(principal=other, permission="x.doc.read"), metadata=metadata
        )
        assert (await _code(nosy)).code() == grpc.StatusCode.PERMISSION_DENIED
        nosy_batch = stub.CheckBatch(
            az.CheckBatchRequest(
                principal=other, items=[az.CheckBatchItem(permission="x.doc.read")]
            ),
            metadata=metadata,
        )
        assert (await _code(nosy_batch)).code() == grpc.StatusCode.PERMISSION_DENIED
    same = await stub.Check(
        az.CheckRequest(principal=authz.principal(ORG_A, user), permission="x.doc.read"),
        metadata=metadata,
    )
    assert same.decision.allowed

    stranger = authz.as_service("client")
    for call in (
        stranger.Check(
            az.CheckRequest(principal=authz.principal(ORG_A, user), permission="x.doc.read")
        ),
        stranger.CheckBatch(
            az.CheckBatchRequest(
                principal=authz.principal(ORG_A, user),
                items=[az.CheckBatchItem(permission="x.doc.read")],
            )
        ),
        stranger.PlanList(
            az.PlanListRequest(
                principal=authz.principal(ORG_A, user),
                permission="x.doc.read",
                resource_type="x.doc",
            )
        ),
        stranger.GetSubjectSnapshot(
            az.GetSubjectSnapshotRequest(principal=authz.principal(ORG_A, user))
        ),
    ):
        assert (await _code(call)).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_z1_check_batch_keeps_order_and_one_revision_within_limits(authz: Authz) -> None:
    await _register(authz)
    user, other = str(uuid.uuid4()), str(uuid.uuid4())
    role = await _role(authz, ORG_A, "editor", READ_ANY, UPDATE_OWN)
    assigned = await _assign(authz, ORG_A, role, user)
    items = [
        (az.CheckBatchItem(permission="x.doc.read", resource=_doc()), True, 0),
        (az.CheckBatchItem(permission="x.doc.delete", resource=_doc()), False, 2),
        (az.CheckBatchItem(permission="x.doc.update", resource=_doc(owner=user)), True, 0),
        (az.CheckBatchItem(permission="x.doc.publish", resource=_doc()), False, 1),
        (az.CheckBatchItem(permission="x.doc.update", resource=_doc(owner=other)), False, 3),
        (az.CheckBatchItem(permission="x.doc.read", resource=_doc(org=ORG_B)), False, 4),
        (az.CheckBatchItem(permission="x.doc.read"), True, 0),
    ]
    reasons = {
        0: az.DENY_REASON_UNSPECIFIED,
        1: az.DENY_REASON_UNKNOWN_PERMISSION,
        2: az.DENY_REASON_NO_GRANT,
        3: az.DENY_REASON_SCOPE_MISMATCH,
        4: az.DENY_REASON_OTHER_ORG,
    }
    stub, metadata = authz.as_user(ORG_A, user)
    for order in (items, list(reversed(items))):
        reply = await stub.CheckBatch(
            az.CheckBatchRequest(items=[i for i, _, _ in order]), metadata=metadata
        )
        assert reply.revision == assigned.revision
        assert [d.allowed for d in reply.decisions] == [a for _, a, _ in order]
        assert [d.deny_reason for d in reply.decisions] == [reasons[r] for _, _, r in order]
        assert {d.revision for d in reply.decisions} == {reply.revision}
        assert len({d.decision_id for d in reply.decisions}) == len(order)
        for decision, (item, _, _) in zip(reply.decisions, order, strict=True):
            single = await _check(authz, user, item.permission, item.resource)
            assert (single.allowed, single.deny_reason) == (decision.allowed, decision.deny_reason)
    on_behalf = await authz.as_service("gateway").CheckBatch(
        az.CheckBatchRequest(principal=authz.principal(ORG_A, user), items=[i for i, _, _ in items])
    )
    assert [d.allowed for d in on_behalf.decisions] == [a for _, a, _ in items]

    at_limit = [az.CheckBatchItem(permission="x.doc.read", resource=_doc())] * 1000
    full = await stub.CheckBatch(az.CheckBatchRequest(items=at_limit), metadata=metadata)
    assert len(full.decisions) == 1000
    assert all(d.allowed for d in full.decisions)
    too_many = stub.CheckBatch(
        az.CheckBatchRequest(items=[*at_limit, items[0][0]]), metadata=metadata
    )
    error = await _code(too_many)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "1000" in (error.details() or "")
    empty = await _code(stub.CheckBatch(az.CheckBatchRequest(), metadata=metadata))
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "items" in (empty.details() or "")
    bad_key = stub.CheckBatch(
        az.CheckBatchRequest(items=[items[0][0], az.CheckBatchItem(permission="x.doc")]),
        metadata=metadata,
    )
    assert (await _code(bad_key)).code() == grpc.StatusCode.INVALID_ARGUMENT
    no_principal = authz.as_service("gateway").CheckBatch(az.CheckBatchRequest(items=[items[0][0]]))
    assert (await _code(no_principal)).code() == grpc.StatusCode.INVALID_ARGUMENT


# --- Z1 acceptance: tenancy -----------------------------------------------------------------------

_GRANTABLE = [
    az.ScopedPermission(permission=d.key, scope=s)
    for d in CATALOG[:5]
    for s in (d.allowed_scopes or [az.SCOPE_ANY])
]


async def _random_org(
    authz: Authz, rng: random.Random, org: str, users: list[str]
) -> tuple[list[str], list[str]]:
    """Random roles assigned to random users and random teams in `org`; the teams' ids and the
    users holding a role."""
    service = authz.as_service("identity")
    holders: list[str] = []
    for n in range(4):
        grants = rng.sample(_GRANTABLE, rng.randint(1, 6))
        unique = {g.permission: g for g in grants}  # one scope per key: see the Z4 test
        role = await _role(authz, org, f"role-{n}", *unique.values())
        for user in rng.sample(users, rng.randint(1, 3)):
            await _assign(authz, org, role, user)
            holders.append(user)
    teams = []
    for n in range(3):
        team = await service.CreateTeam(az.CreateTeamRequest(org_id=org, name=f"team-{n}"))
        teams.append(team.team.team_id)
        for user in rng.sample(users, rng.randint(1, 3)):
            await service.AddTeamMember(
                az.AddTeamMemberRequest(org_id=org, team_id=team.team.team_id, user_id=user)
            )
    return teams, holders


async def test_z1_no_grant_of_one_org_allows_anything_on_another_orgs_resources(
    authz: Authz,
) -> None:
    """Acceptance: whatever roles, grants and teams orgs A and B hold (the same user ids in
    both, Owner in one), every Check of an org-A principal on an org-B resource denies with
    DENY_REASON_OTHER_ORG, and the other way round."""
    await _register(authz)
    rng = random.Random(20240611)
    users = [str(uuid.uuid4()) for _ in range(6)]
    await authz.seed_org(ORG_A, users[0])
    await authz.seed_org(ORG_B, users[1])
    teams_a, holders_a = await _random_org(authz, rng, ORG_A, users)
    teams_b, holders_b = await _random_org(authz, rng, ORG_B, users)
    assert set(holders_a) & set(holders_b), "the orgs should share users"
    keys = [d.key for d in CATALOG[:5]]
    same_org_allowed = 0
    checked = 0
    for home, away, home_teams, away_teams in (
        (ORG_A, ORG_B, teams_a, teams_b),
        (ORG_B, ORG_A, teams_b, teams_a),
    ):
        for user in users:
            resources = [
                az.Resource(
                    type=rng.choice(["x.doc", "x.note"]),
                    id=str(rng.randint(1, 10**6)),
                    org_id=away,
                    owner_id=rng.choice([user, user, "", rng.choice(users)]),
                    team_id=rng.choice(["", rng.choice(home_teams), rng.choice(away_teams)]),
                )
                for _ in range(30)
            ]
            items = [az.CheckBatchItem(permission=k, resource=r) for r in resources for k in keys]
            for principal in (authz.principal(home, user), _ai(home, user)):
                reply = await authz.as_service("gateway").CheckBatch(
                    az.CheckBatchRequest(principal=principal, items=items)
                )
                for item, decision in zip(items, reply.decisions, strict=True):
                    assert not decision.allowed, (principal, item)
                    assert decision.deny_reason == az.DENY_REASON_OTHER_ORG, (principal, item)
                    assert not decision.HasField("grant")
                checked += len(items)
                # The same resources in the principal's own org: the grants are real.
                for item in items:
                    item.resource.org_id = home
                mirrored = await authz.as_service("gateway").CheckBatch(
                    az.CheckBatchRequest(principal=principal, items=items)
                )
                same_org_allowed += sum(d.allowed for d in mirrored.decisions)
                for item in items:
                    item.resource.org_id = away
            stub, metadata = authz.as_user(home, user)
            for resource in resources[:5]:
                single = await stub.Check(
                    az.CheckRequest(permission=rng.choice(keys), resource=resource),
                    metadata=metadata,
                )
                assert single.decision.deny_reason == az.DENY_REASON_OTHER_ORG
    assert checked == 2 * 6 * 2 * 30 * len(keys)
    assert same_org_allowed > checked // 10


# --- I2: AI principals ----------------------------------------------------------------------------


async def test_i2_ai_gets_its_users_grants_narrowed_and_never_escalation(authz: Authz) -> None:
    await _register(authz)
    user = str(uuid.uuid4())
    role = await _role(
        authz,
        ORG_A,
        "power",
        READ_ANY,
        UPDATE_OWN,
        *[az.ScopedPermission(permission=k, scope=az.SCOPE_ANY) for k in AI_FORBIDDEN_KEYS],
    )
    assigned = await _assign(authz, ORG_A, role, user)
    stub, metadata = _as_ai(authz, ORG_A, user)

    async def ai_check(
        permission: str, resource: az.Resource | None = None, narrowing: tuple[str, ...] = ()
    ) -> az.Decision:
        reply = await stub.Check(
            az.CheckRequest(
                permission=permission,
                resource=resource or _doc(),
                ai_narrowing=[
                    az.ScopedPermission(permission=k, scope=az.SCOPE_ANY) for k in narrowing
                ],
            ),
            metadata=metadata,
        )
        decision: az.Decision = reply.decision
        return decision

    read = await ai_check("x.doc.read")
    assert read.allowed
    assert read.grant.role_id == role
    assert read.grant.assignment_id == assigned.assignment.assignment_id
    assert read.grant.permission == READ_ANY
    assert (await ai_check("x.doc.update", _doc(owner=user))).allowed
    assert not (await ai_check("x.doc.update", _doc(owner="someone"))).allowed
    assert (await ai_check("x.doc.delete")).deny_reason == az.DENY_REASON_NO_GRANT
    assert (await ai_check("x.doc.read", _doc(org=ORG_B))).deny_reason == az.DENY_REASON_OTHER_ORG

    narrowed = await ai_check("x.doc.update", _doc(owner=user), narrowing=("x.doc.read",))
    assert not narrowed.allowed
    assert narrowed.deny_reason == az.DENY_REASON_AI_NARROWING
    assert (await ai_check("x.doc.read", narrowing=("x.doc.read",))).allowed
    # Narrowing only restricts: naming a key the user lacks does not grant it.
    beyond = await ai_check("x.doc.delete", narrowing=("x.doc.delete",))
    assert beyond.deny_reason == az.DENY_REASON_NO_GRANT
    user_stub, user_meta = authz.as_user(ORG_A, user)
    for key in AI_FORBIDDEN_KEYS:
        as_user = await user_stub.Check(
            az.CheckRequest(permission=key, resource=_doc()), metadata=user_meta
        )
        assert as_user.decision.allowed, key
        for narrowing in ((), (key,)):
            forbidden = await ai_check(key, narrowing=narrowing)
            assert not forbidden.allowed, key
            assert forbidden.deny_reason == az.DENY_REASON_AI_FORBIDDEN, key
    # The narrowing is ignored for a user principal (it is the AI session's).
    as_user = await user_stub.Check(
        az.CheckRequest(
            permission="x.doc.update",
            resource=_doc(owner=user),
            ai_narrowing=[READ_ANY],
        ),
        metadata=user_meta,
    )
    assert as_user.decision.allowed

    # The same through a service asking on behalf of the AI principal, in one batch.
    batch = await authz.as_service("ai-broker").CheckBatch(
        az.CheckBatchRequest(
            principal=_ai(ORG_A, user),
            items=[
                az.CheckBatchItem(permission="x.doc.read", resource=_doc()),
                az.CheckBatchItem(permission="x.doc.update", resource=_doc(owner=user)),
                az.CheckBatchItem(permission="x.role.assign", resource=_doc()),
            ],
            ai_narrowing=[READ_ANY, az.ScopedPermission(permission="x.role.assign")],
        )
    )
    assert [d.deny_reason for d in batch.decisions] == [
        az.DENY_REASON_UNSPECIFIED,
        az.DENY_REASON_AI_NARROWING,
        az.DENY_REASON_AI_FORBIDDEN,
    ]
    assert batch.decisions[0].allowed

    owner_stub, owner_meta, _ = await authz.org_owner(ORG_A)
    why = await owner_stub.Explain(
        az.ExplainRequest(
            query=az.ExplainQuery(
                principal=_ai(ORG_A, user), permission="x.role.assign", resource=_doc()
            )
        ),
        metadata=owner_meta,
    )
    assert why.decision.deny_reason == az.DENY_REASON_AI_FORBIDDEN
    (step,) = _steps(why, az.EXPLAIN_STEP_KIND_AI_RESTRICTION)
    assert not step.passed
    assert not _steps(why, az.EXPLAIN_STEP_KIND_GRANT)


async def test_i2_ai_may_not_assign_roles_through_authz_own_keys(authz: Authz) -> None:
    """An org Owner holds authz.roleAssignment.create; its AI session must not: a role
    assignment is a role change, never allowed to an AI (DENY_REASON_AI_FORBIDDEN)."""
    _, _, owner = await authz.org_owner(ORG_A)
    user_stub, user_meta = authz.as_user(ORG_A, owner)
    resource = az.Resource(type="authz.roleAssignment", org_id=ORG_A)
    mine = await user_stub.Check(
        az.CheckRequest(permission="authz.roleAssignment.create", resource=resource),
        metadata=user_meta,
    )
    assert mine.decision.allowed
    stub, metadata = _as_ai(authz, ORG_A, owner)
    reply = await stub.Check(
        az.CheckRequest(permission="authz.roleAssignment.create", resource=resource),
        metadata=metadata,
    )
    assert not reply.decision.allowed
    assert reply.decision.deny_reason == az.DENY_REASON_AI_FORBIDDEN


# --- Z7 acceptance: Explain -----------------------------------------------------------------------


async def test_z7_explain_replays_decisions_at_their_revision_and_at_any_other(
    authz: Authz, db_connection: AsyncConnection
) -> None:
    """Acceptance: Explain names the deciding grant; after the grant is gone (UnassignRole or
    UpdateRole) the old decision still explains as allowed at its own revision and as denied at
    the new one; decisions are readable before and after the decision log is flushed."""
    await _register(authz)
    owner_stub, owner_meta, _ = await authz.org_owner(ORG_A)
    user, viewer = str(uuid.uuid4()), str(uuid.uuid4())
    editor_role = await _role(authz, ORG_A, "editor", READ_ANY, UPDATE_OWN)
    viewer_role = await _role(authz, ORG_A, "viewer", READ_ANY)
    assigned = await _assign(authz, ORG_A, editor_role, user)
    viewer_assigned = await _assign(authz, ORG_A, viewer_role, viewer)
    resource = _doc(owner="someone")
    decision = await _check(authz, user, "x.doc.read", resource)
    assert decision.allowed
    viewer_decision = await _check(authz, viewer, "x.doc.read", resource)
    assert viewer_decision.allowed

    async def explain(**fields: Any) -> az.ExplainResponse:
        reply: az.ExplainResponse = await owner_stub.Explain(
            az.ExplainRequest(**fields), metadata=owner_meta
        )
        return reply

    def assert_allowed_by(
        reply: az.ExplainResponse, role_id: str, name: str, assignment: str, revision: int
    ) -> None:
        assert reply.decision.allowed
        assert reply.revision == revision
        assert reply.decision.revision == revision
        assert [s.kind for s in reply.steps] == [
            az.EXPLAIN_STEP_KIND_CATALOG,
            az.EXPLAIN_STEP_KIND_TENANCY,
            az.EXPLAIN_STEP_KIND_GRANT,
            az.EXPLAIN_STEP_KIND_SCOPE,
            az.EXPLAIN_STEP_KIND_DANGEROUS,
        ]
        assert all(s.passed for s in reply.steps)
        (grant_step,) = _steps(reply, az.EXPLAIN_STEP_KIND_GRANT)
        expected = az.Grant(
            role_id=role_id,
            role_name=name,
            assignment_id=assignment,
            permission=READ_ANY,
            source=az.GRANT_SOURCE_ROLE_ASSIGNMENT,
        )
        assert grant_step.grant == expected
        assert "x.doc.read:any" in grant_step.detail
        (scope_step,) = _steps(reply, az.EXPLAIN_STEP_KIND_SCOPE)
        assert scope_step.grant == expected
        assert reply.decision.grant == expected

    def assert_denied(reply: az.ExplainResponse, revision: int) -> None:
        assert not reply.decision.allowed
        assert reply.decision.deny_reason == az.DENY_REASON_NO_GRANT
        assert reply.revision == revision
        (grant_step,) = _steps(reply, az.EXPLAIN_STEP_KIND_GRANT)
        assert not grant_step.passed
        assert not _steps(reply, az.EXPLAIN_STEP_KIND_SCOPE)

    # Readable from memory before the log is flushed, then from the table.
    log = authz.services.decisions._log
    assert isinstance(log, BatchedDecisionLog)
    stored = text("SELECT allowed, revision, permission FROM authz.decisions WHERE id = :id")
    assert (await db_connection.execute(stored, {"id": decision.decision_id})).first() is None
    assert_allowed_by(
        await explain(decision_id=decision.decision_id),
        editor_role,
        "editor",
        assigned.assignment.assignment_id,
        decision.revision,
    )
    assert await log.flush() >= 2
    row = (await db_connection.execute(stored, {"id": decision.decision_id})).one()
    assert tuple(row) == (True, decision.revision, "x.doc.read")
    # authz's own role may read and append decisions, never rewrite them.
    async with db_connection.begin_nested():
        await db_connection.execute(text("SET ROLE helios_authz"))
        assert (await db_connection.execute(stored, {"id": decision.decision_id})).one()
        with pytest.raises(DBAPIError, match="permission denied"):
            async with db_connection.begin_nested():
                await db_connection.execute(
                    text("UPDATE authz.decisions SET allowed = false WHERE id = :id"),
                    {"id": decision.decision_id},
                )
        await db_connection.execute(text("RESET ROLE"))

    # The grant goes away by UnassignRole.
    unassigned = await _unassign(authz, ORG_A, editor_role, user)
    assert unassigned > viewer_assigned.revision
    assert not (await _check(authz, user, "x.doc.read", resource)).allowed
    old = await explain(decision_id=decision.decision_id)
    assert_allowed_by(
        old, editor_role, "editor", assigned.assignment.assignment_id, decision.revision
    )
    assert_denied(
        await explain(decision_id=decision.decision_id, at_revision=unassigned), unassigned
    )

    # The grant goes away by UpdateRole (the role keeps its assignment).
    updated = await authz.as_service("identity").UpdateRole(
        az.UpdateRoleRequest(
            org_id=ORG_A,
            role_id=viewer_role,
            permissions=az.ScopedPermissionList(permissions=[UPDATE_OWN]),
        )
    )
    assert_allowed_by(
        await explain(decision_id=viewer_decision.decision_id),
        viewer_role,
        "viewer",
        viewer_assigned.assignment.assignment_id,
        viewer_decision.revision,
    )
    assert_denied(
        await explain(decision_id=viewer_decision.decision_id, at_revision=updated.revision),
        updated.revision,
    )

    # A hypothetical query: now (latest) and at a past revision.
    query = az.ExplainQuery(
        principal=authz.principal(ORG_A, user), permission="x.doc.read", resource=resource
    )
    now = await explain(query=query)
    assert_denied(now, updated.revision)
    assert_allowed_by(
        await explain(query=query, at_revision=assigned.revision),
        editor_role,
        "editor",
        assigned.assignment.assignment_id,
        assigned.revision,
    )
    elsewhere = await explain(
        query=az.ExplainQuery(
            principal=authz.principal(ORG_A, viewer),
            permission="x.doc.read",
            resource=_doc(org=ORG_B),
        ),
        at_revision=viewer_assigned.revision,
    )
    assert elsewhere.decision.deny_reason == az.DENY_REASON_OTHER_ORG
    (tenancy,) = _steps(elsewhere, az.EXPLAIN_STEP_KIND_TENANCY)
    assert not tenancy.passed
    unknown = await explain(query=az.ExplainQuery(principal=query.principal, permission="x.a.b"))
    assert unknown.decision.deny_reason == az.DENY_REASON_UNKNOWN_PERMISSION
    assert [(s.kind, s.passed) for s in unknown.steps] == [(az.EXPLAIN_STEP_KIND_CATALOG, False)]

    # Refusals.
    for fields in (
        {"decision_id": decision.decision_id, "at_revision": updated.revision + 1},
        {"query": query, "at_revision": updated.revision + 1},
        {"decision_id": decision.decision_id, "at_revision": -1},
        {"decision_id": "not-a-uuid"},
        {},
        {"query": az.ExplainQuery(principal=query.principal, permission="x.doc")},
        {"query": az.ExplainQuery(principal=authz.principal(ORG_B), permission="x.doc.read")},
    ):
        error = await _code(owner_stub.Explain(az.ExplainRequest(**fields), metadata=owner_meta))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
    beyond = await _code(
        owner_stub.Explain(
            az.ExplainRequest(decision_id=decision.decision_id, at_revision=updated.revision + 1),
            metadata=owner_meta,
        )
    )
    assert "newer" in (beyond.details() or "")
    missing = owner_stub.Explain(
        az.ExplainRequest(decision_id=str(uuid.uuid4())), metadata=owner_meta
    )
    assert (await _code(missing)).code() == grpc.StatusCode.NOT_FOUND
    b_stub, b_meta, _ = await authz.org_owner(ORG_B)
    foreign = b_stub.Explain(az.ExplainRequest(decision_id=decision.decision_id), metadata=b_meta)
    assert (await _code(foreign)).code() == grpc.StatusCode.NOT_FOUND
    service = authz.as_service("identity")
    as_b = service.Explain(az.ExplainRequest(org_id=ORG_B, decision_id=decision.decision_id))
    assert (await _code(as_b)).code() == grpc.StatusCode.NOT_FOUND
    as_a = await service.Explain(az.ExplainRequest(org_id=ORG_A, decision_id=decision.decision_id))
    assert as_a.decision.allowed
    cross = owner_stub.Explain(
        az.ExplainRequest(org_id=ORG_B, decision_id=decision.decision_id), metadata=owner_meta
    )
    assert (await _code(cross)).code() == grpc.StatusCode.PERMISSION_DENIED
    for who in (user, viewer):
        stub, metadata = authz.as_user(ORG_A, who)
        own = stub.Explain(az.ExplainRequest(decision_id=decision.decision_id), metadata=metadata)
        assert (await _code(own)).code() == grpc.StatusCode.PERMISSION_DENIED
    ai_stub, ai_meta = _as_ai(authz, ORG_A, authz.principal(ORG_A).actor_id)
    by_ai = ai_stub.Explain(az.ExplainRequest(decision_id=decision.decision_id), metadata=ai_meta)
    assert (await _code(by_ai)).code() == grpc.StatusCode.PERMISSION_DENIED

    # Every decision was recorded: the later ones too, once flushed.
    assert await log.flush() >= 1
    count = text("SELECT count(*) FROM authz.decisions WHERE org_id = :org AND allowed")
    assert (await db_connection.execute(count, {"org": ORG_A})).scalar_one() >= 2
    after = await explain(decision_id=decision.decision_id)
    assert after.decision.allowed


async def test_z7_explain_names_the_role_as_it_was_at_the_decision(authz: Authz) -> None:
    """Grant.role_name is the "role name at the decision's revision": renaming the role later
    does not rewrite the explanation of an old decision."""
    await _register(authz)
    owner_stub, owner_meta, _ = await authz.org_owner(ORG_A)
    user = str(uuid.uuid4())
    role = await _role(authz, ORG_A, "viewer", READ_ANY)
    await _assign(authz, ORG_A, role, user)
    decision = await _check(authz, user, "x.doc.read")
    assert decision.grant.role_name == "viewer"
    await authz.as_service("identity").UpdateRole(
        az.UpdateRoleRequest(org_id=ORG_A, role_id=role, name="renamed viewer")
    )
    reply = await owner_stub.Explain(
        az.ExplainRequest(decision_id=decision.decision_id), metadata=owner_meta
    )
    assert reply.decision.allowed
    assert reply.decision.grant.role_name == "viewer"


async def test_z7_explain_of_a_decision_made_at_revision_zero_stays_at_revision_zero(
    authz: Authz,
) -> None:
    """A decision made before the org had any policy (revision 0) is replayed at revision 0,
    not at the org's current state."""
    await _register(authz)
    fresh_org, user = str(uuid.uuid4()), str(uuid.uuid4())
    before = await _check(authz, user, "x.doc.read", _doc(fresh_org), org=fresh_org)
    assert not before.allowed
    assert before.revision == 0
    await _assign(authz, fresh_org, await _role(authz, fresh_org, "reader", READ_ANY), user)
    assert (await _check(authz, user, "x.doc.read", _doc(fresh_org), org=fresh_org)).allowed
    reply = await authz.as_service("identity").Explain(
        az.ExplainRequest(org_id=fresh_org, decision_id=before.decision_id)
    )
    assert reply.revision == 0
    assert not reply.decision.allowed
    assert reply.decision.deny_reason == az.DENY_REASON_NO_GRANT


async def test_z7_explain_of_a_recorded_decision_returns_its_decision_id(authz: Authz) -> None:
    """Decision.decision_id is the "id of the recorded decision": explaining decision D at its
    own revision returns D, not a fresh id that Explain itself cannot find."""
    await _register(authz)
    owner_stub, owner_meta, _ = await authz.org_owner(ORG_A)
    user = str(uuid.uuid4())
    await _assign(authz, ORG_A, await _role(authz, ORG_A, "reader", READ_ANY), user)
    decision = await _check(authz, user, "x.doc.read")
    reply = await owner_stub.Explain(
        az.ExplainRequest(decision_id=decision.decision_id), metadata=owner_meta
    )
    assert reply.decision.decision_id == decision.decision_id


# --- Z1 acceptance: consistency across replicas ---------------------------------------------------


@pytest.fixture
async def replicas(
    authz: Authz,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    nats_url: str,
) -> AsyncIterator[Replicas]:
    group = Replicas(db_session, pki, principal_keys, nats_url)
    try:
        yield group
    finally:
        await group.close()


async def _poll_denied(
    replicas: list[Authz], user: str, resource: az.Resource, seconds: float = POLL_SECONDS
) -> list[bool]:
    """Check with minimize_latency on every replica until all deny or `seconds` passed; the
    last answers (True = still allowed)."""
    deadline = time.monotonic() + seconds
    while True:
        answers = [(await _check(r, user, "x.doc.read", resource)).allowed for r in replicas]
        if not any(answers) or time.monotonic() > deadline:
            return answers
        await asyncio.sleep(0.05)


async def test_z1_revocation_reaches_every_replica_by_revision_and_through_nats(
    authz: Authz, replicas: Replicas
) -> None:
    """Acceptance: two replicas with 30 s caches, both warmed by an allowing Check. After
    UnassignRole returns R, at_least_as_fresh(R) denies on both at once; minimize_latency
    denies on both once the announcement has travelled through NATS."""
    await _register(authz)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    role = await _role(authz, ORG_A, "reader", READ_ANY)
    for user in (first, second):
        await _assign(authz, ORG_A, role, user)
    one = await replicas.start(cache_ttl=30.0, listen=True)
    two = await replicas.start(cache_ttl=30.0, listen=True)
    both = [one.authz, two.authz]
    assert await replicas.relay() > 0  # the setup's announcements are behind us
    resource = _doc()
    for replica in both:
        for user in (first, second):
            assert (await _check(replica, user, "x.doc.read", resource)).allowed

    revoked = await _unassign(authz, ORG_A, role, first)
    for replica in both:
        fresh = await _check(
            replica, first, "x.doc.read", resource, az.Consistency(at_least_as_fresh=revoked)
        )
        assert not fresh.allowed
        assert fresh.deny_reason == az.DENY_REASON_NO_GRANT
        assert fresh.revision >= revoked
        consistent = await _check(replica, first, "x.doc.read", resource, FRESH)
        assert not consistent.allowed

    revoked_second = await _unassign(authz, ORG_A, role, second)
    for replica in both:
        # Nothing announced yet: the replicas' caches still serve the old grant.
        stale = await _check(replica, second, "x.doc.read", resource)
        assert stale.allowed
        assert stale.revision < revoked_second
    received = [r.listener.received for r in (one, two) if r.listener is not None]
    assert await replicas.relay() > 0
    answers = await _poll_denied(both, second, resource)
    assert answers == [False, False], "minimize_latency still allowed after the announcement"
    now_received = [r.listener.received for r in (one, two) if r.listener is not None]
    assert all(n > b for n, b in zip(now_received, received, strict=True))
    for replica in both:
        after = await _check(replica, second, "x.doc.read", resource)
        assert after.revision >= revoked_second


async def test_z1_without_announcements_the_cache_ttl_bounds_staleness(
    authz: Authz, replicas: Replicas, db_connection: AsyncConnection
) -> None:
    """NATS delivering nothing (no listener, no relay): a replica with a 1 s cache still
    stops allowing a revoked grant within about a second."""
    await _register(authz)
    user = str(uuid.uuid4())
    role = await _role(authz, ORG_A, "reader", READ_ANY)
    await _assign(authz, ORG_A, role, user)
    lonely = await replicas.start(cache_ttl=1.0, listen=False)
    resource = _doc()
    assert (await _check(lonely.authz, user, "x.doc.read", resource)).allowed
    revoked = await _unassign(authz, ORG_A, role, user)
    answers = await _poll_denied([lonely.authz], user, resource, seconds=3.0)
    assert answers == [False]
    assert (await _check(lonely.authz, user, "x.doc.read", resource)).revision >= revoked
    pending = text(
        "SELECT count(*) FROM authz.outbox WHERE published_at IS NULL AND subject = :subject"
    )
    unpublished = await db_connection.execute(pending, {"subject": f"authz.policy.changed.{ORG_A}"})
    assert unpublished.scalar_one() > 0


# --- Snapshots ------------------------------------------------------------------------------------


async def test_z1_subject_snapshot_holds_grants_teams_dangerous_and_revisions(
    authz: Authz,
) -> None:
    catalog_revision = await _register(authz)
    service = authz.as_service("identity")
    user = str(uuid.uuid4())
    editor = await _role(authz, ORG_A, "editor", READ_ANY, UPDATE_OWN)
    staff = await _role(authz, ORG_A, "staff", SHARE_TEAM)
    assigned = await _assign(authz, ORG_A, editor, user)
    user_type = await service.CreateUserType(
        az.CreateUserTypeRequest(org_id=ORG_A, name="contractor", default_role_id=staff)
    )
    type_id = user_type.user_type.user_type_id
    await service.AssignUserType(
        az.AssignUserTypeRequest(org_id=ORG_A, user_id=user, user_type_id=type_id)
    )
    team_ids = []
    for name in ("blue", "red"):
        team = await service.CreateTeam(az.CreateTeamRequest(org_id=ORG_A, name=name))
        team_ids.append(team.team.team_id)
        await service.AddTeamMember(
            az.AddTeamMemberRequest(org_id=ORG_A, team_id=team.team.team_id, user_id=user)
        )
    other_team = await service.CreateTeam(az.CreateTeamRequest(org_id=ORG_A, name="green"))
    dangerous = await service.SetDangerousActions(
        az.SetDangerousActionsRequest(org_id=ORG_A, permissions=["x.doc.read", "x.*.share"])
    )
    await _assign(authz, ORG_B, await _role(authz, ORG_B, "b-editor", READ_ANY), user)

    stub, metadata = authz.as_user(ORG_A, user)
    snapshot = await stub.GetSubjectSnapshot(az.GetSubjectSnapshotRequest(), metadata=metadata)
    expected_grants = [
        az.Grant(
            role_id=editor,
            role_name="editor",
            assignment_id=assigned.assignment.assignment_id,
            permission=READ_ANY,
            source=az.GRANT_SOURCE_ROLE_ASSIGNMENT,
        ),
        az.Grant(
            role_id=editor,
            role_name="editor",
            assignment_id=assigned.assignment.assignment_id,
            permission=UPDATE_OWN,
            source=az.GRANT_SOURCE_ROLE_ASSIGNMENT,
        ),
        az.Grant(
            role_id=staff,
            role_name="staff",
            permission=SHARE_TEAM,
            source=az.GRANT_SOURCE_USER_TYPE_DEFAULT,
            user_type_id=type_id,
        ),
    ]
    by_role = sorted(snapshot.grants, key=lambda g: (g.role_name, g.permission.permission))
    assert by_role == expected_grants
    assert list(snapshot.team_ids) == sorted(team_ids)
    assert other_team.team.team_id not in snapshot.team_ids
    assert sorted(snapshot.org_dangerous_actions) == ["x.*.share", "x.doc.read"]
    assert snapshot.revision == dangerous.revision
    assert snapshot.catalog_revision == catalog_revision
    assert not snapshot.platform_root

    itself = await stub.GetSubjectSnapshot(
        az.GetSubjectSnapshotRequest(principal=authz.principal(ORG_A, user), consistency=FRESH),
        metadata=metadata,
    )
    assert itself.grants == snapshot.grants
    on_behalf = await authz.as_service("gateway").GetSubjectSnapshot(
        az.GetSubjectSnapshotRequest(principal=authz.principal(ORG_A, user))
    )
    assert on_behalf.grants == snapshot.grants
    assert on_behalf.team_ids == snapshot.team_ids
    ai_stub, ai_meta = _as_ai(authz, ORG_A, user)
    by_ai = await ai_stub.GetSubjectSnapshot(az.GetSubjectSnapshotRequest(), metadata=ai_meta)
    assert by_ai.grants == snapshot.grants
    in_b = await authz.as_service("gateway").GetSubjectSnapshot(
        az.GetSubjectSnapshotRequest(principal=authz.principal(ORG_B, user))
    )
    assert [g.role_name for g in in_b.grants] == ["b-editor"]
    assert list(in_b.team_ids) == []

    for other in (authz.principal(ORG_A), authz.principal(ORG_B, user)):
        nosy = stub.GetSubjectSnapshot(
            az.GetSubjectSnapshotRequest(principal=other), metadata=metadata
        )
        assert (await _code(nosy)).code() == grpc.StatusCode.PERMISSION_DENIED
    no_principal = authz.as_service("gateway").GetSubjectSnapshot(az.GetSubjectSnapshotRequest())
    assert (await _code(no_principal)).code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_z1_fully_consistent_snapshot_reports_the_latest_catalog_revision(
    authz: Authz,
) -> None:
    """fully_consistent bypasses every cache: a snapshot taken right after a service registered
    new permissions carries the new catalog revision."""
    await _register(authz)
    user = str(uuid.uuid4())
    stub, metadata = authz.as_user(ORG_A, user)
    first = await stub.GetSubjectSnapshot(az.GetSubjectSnapshotRequest(), metadata=metadata)
    newer = await _register(
        authz, [*CATALOG, az.PermissionDefinition(key="x.doc.archive", description="Archive.")]
    )
    assert newer > first.catalog_revision
    latest = await stub.GetSubjectSnapshot(
        az.GetSubjectSnapshotRequest(consistency=FRESH), metadata=metadata
    )
    assert latest.catalog_revision == newer


# --- Z3: org seeding through NATS -----------------------------------------------------------------

_SEEDER_DURABLE = "authz-org-seeder"


async def _org_created(
    js: Any, org_id: str, owner: str, msg_id: str | None = None
) -> tuple[audit_pb2.AuditEvent, int]:
    event = audit_pb2.AuditEvent(
        event_id=str(uuid.uuid4()),
        org_id=org_id,
        actor_type=principal_pb2.ACTOR_TYPE_USER,
        actor_id=owner,
        action="identity.org.create",
        resource_type="identity.org",
        resource_id=org_id,
        producer="identity",
        outcome=audit_pb2.AUDIT_OUTCOME_SUCCESS,
    )
    event.occurred_at.GetCurrentTime()
    json_format.ParseDict({"owner_user_id": owner, "name": "Acme"}, event.diff)
    ack = await js.publish(
        ORG_CREATED_SUBJECT,
        event.SerializeToString(),
        headers={"Nats-Msg-Id": msg_id or event.event_id},
    )
    return event, int(ack.seq)


async def _until_consumed(js: Any, seq: int) -> None:
    """Wait until the seeder's durable consumer acknowledged everything up to stream seq `seq`."""
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(JsNotFoundError):
            info = await js.consumer_info(AUDIT_STREAM, _SEEDER_DURABLE)
            if info.ack_floor.stream_seq >= seq and info.num_ack_pending == 0:
                return
        assert time.monotonic() < deadline, "the org seeder did not consume the events"
        await asyncio.sleep(0.05)


async def test_z3_org_created_event_on_nats_seeds_blueprints_and_owner_once(
    authz: Authz, db_connection: AsyncConnection
) -> None:
    """Identity's audited org creation, published to the AUDIT stream, makes OrgSeeder seed the
    five blueprint roles and give the owner Owner; the same event delivered twice seeds once.
    A NATS server of its own keeps the fixed durable name away from other test sessions."""
    await _register(authz)
    org, owner = str(uuid.uuid4()), str(uuid.uuid4())
    later_org, later_owner = str(uuid.uuid4()), str(uuid.uuid4())
    server = ThrowawayNats().start()
    bus = Bus(server.url, "authz-seeder-itest")
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        js = await bus.jetstream()
        await ensure_audit_stream(js)
        event, _ = await _org_created(js, org, owner)
        again = await js.publish(
            ORG_CREATED_SUBJECT, event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id}
        )
        assert again.duplicate  # JetStream drops a republished event inside its window ...
        # ... and a redelivery after the window (a new message id) must not seed twice.
        _, redelivered = await _org_created(js, org, owner, msg_id=str(uuid.uuid4()))
        nameless = audit_pb2.AuditEvent(event_id=str(uuid.uuid4()), action="identity.org.create")
        await js.publish(ORG_CREATED_SUBJECT, nameless.SerializeToString())
        task = asyncio.create_task(OrgSeeder(bus, authz.services.seeding).run(stop))
        await _until_consumed(js, redelivered + 1)
        _, last = await _org_created(js, later_org, later_owner)
        await _until_consumed(js, last)
    finally:
        stop.set()
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=5)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):
            await (await bus.jetstream()).delete_consumer(AUDIT_STREAM, _SEEDER_DURABLE)
        if bus.client is not None:
            await bus.client.close()
        server.destroy()
    assert task is not None
    assert task.done()
    assert not task.cancelled(), "the org seeder did not return within 5 s of stop"
    assert task.exception() is None

    for org_id, owner_id in ((org, owner), (later_org, later_owner)):
        stub, metadata = authz.as_user(org_id, owner_id)
        roles = await stub.ListRoles(az.ListRolesRequest(), metadata=metadata)
        assert sorted((r.name, r.blueprint) for r in roles.roles) == [
            ("Admin", az.ROLE_BLUEPRINT_ADMIN),
            ("Client", az.ROLE_BLUEPRINT_CLIENT),
            ("Employee", az.ROLE_BLUEPRINT_EMPLOYEE),
            ("Manager", az.ROLE_BLUEPRINT_MANAGER),
            ("Owner", az.ROLE_BLUEPRINT_OWNER),
        ]
        owner_role = next(r for r in roles.roles if r.name == "Owner")
        assert READ_ANY in owner_role.permissions
        assignments = await stub.ListRoleAssignments(
            az.ListRoleAssignmentsRequest(), metadata=metadata
        )
        assert [(a.role_id, a.user_id) for a in assignments.assignments] == [
            (owner_role.role_id, owner_id)
        ]
        assert (await _check(authz, owner_id, "x.doc.delete", _doc(org_id), org=org_id)).allowed
        counts = await db_connection.execute(
            text(
                "SELECT (SELECT count(*) FROM authz.roles WHERE org_id = :org),"
                " (SELECT count(*) FROM authz.assignments WHERE org_id = :org)"
            ),
            {"org": org_id},
        )
        assert tuple(counts.one()) == (5, 1)  # seeded once, though delivered twice
