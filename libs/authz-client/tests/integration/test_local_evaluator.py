"""The local evaluator against the real authz server, PostgreSQL and NATS: it agrees with Check
and PlanList, honours zookies, and converges on revocations (Z1, Z5)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.authz_client.decisions import LocalDecision
from helios.authz_client.freshness import MINIMIZE_LATENCY, AtLeastAsFresh, FreshnessPolicy
from helios.authz_client.rpc import filter_from_proto
from helios.authz_client.snapshot import grant_from_proto
from helios.authz_rules.evaluator import Resource
from helios.authz_rules.plan import And, Eq, Filter, In, Or, PlanKind
from helios.proto.authz.v1 import authz_pb2 as az
from helios.proto.common.v1 import principal_pb2

from .conftest import Authz

ORG_A, ORG_B = str(uuid.uuid4()), str(uuid.uuid4())
ALL = [az.SCOPE_OWN, az.SCOPE_TEAM, az.SCOPE_ANY]
CATALOG = [
    az.PermissionDefinition(key="z.doc.read", description="Read a doc.", allowed_scopes=ALL),
    az.PermissionDefinition(
        key="z.doc.update", description="Change a doc.", allowed_scopes=[az.SCOPE_OWN, az.SCOPE_ANY]
    ),
    az.PermissionDefinition(key="z.doc.delete", description="Delete a doc."),
    az.PermissionDefinition(
        key="z.doc.share", description="Share a doc.", dangerous=True, allowed_scopes=ALL
    ),
    az.PermissionDefinition(
        key="z.note.create", description="Write a note.", allowed_scopes=[az.SCOPE_OWN]
    ),
]
KEYS = [d.key for d in CATALOG]
UNKNOWN = "z.doc.publish"
_SCOPE_NAMES = {az.SCOPE_OWN: "own", az.SCOPE_TEAM: "team", az.SCOPE_ANY: "any"}


async def _register(authz: Authz) -> None:
    await authz.as_service("identity").RegisterPermissions(
        az.RegisterPermissionsRequest(service="identity", permissions=CATALOG)
    )


@dataclass
class Workload:
    """Random roles, assignments and teams in org A, made through authz's RPCs."""

    users: list[str]
    teams: list[str]
    revision: int


async def _random_workload(authz: Authz, rng: random.Random) -> Workload:
    await _register(authz)
    admin = authz.as_service("identity")
    revision = 0
    roles = []
    for i in range(5):
        grants = []
        for definition in rng.sample(CATALOG, rng.randint(2, 4)):
            scopes = list(definition.allowed_scopes) or [az.SCOPE_ANY]
            grants.append(az.ScopedPermission(permission=definition.key, scope=rng.choice(scopes)))
        created = await admin.CreateRole(
            az.CreateRoleRequest(org_id=ORG_A, name=f"role-{i}", permissions=grants)
        )
        roles.append(created.role.role_id)
        revision = max(revision, created.revision)
    users = [str(uuid.uuid4()) for _ in range(6)]
    for user in users[1:]:  # users[0] holds no role
        for role in rng.sample(roles, rng.randint(1, 3)):
            assigned = await admin.AssignRole(
                az.AssignRoleRequest(org_id=ORG_A, role_id=role, user_id=user)
            )
            revision = max(revision, assigned.revision)
    teams = []
    for i in range(2):
        team = await admin.CreateTeam(az.CreateTeamRequest(org_id=ORG_A, name=f"team-{i}"))
        teams.append(team.team.team_id)
        for user in rng.sample(users, 3):
            added = await admin.AddTeamMember(
                az.AddTeamMemberRequest(org_id=ORG_A, team_id=team.team.team_id, user_id=user)
            )
            revision = max(revision, added.revision)
        revision = max(revision, team.revision)
    return Workload(users, teams, revision)


def _random_principal(
    authz: Authz, work: Workload, rng: random.Random
) -> tuple[principal_pb2.Principal, list[str]]:
    user = rng.choice([*work.users, str(uuid.uuid4())])
    ai = rng.random() < 0.3
    narrowing = rng.sample(KEYS, rng.randint(0, 2)) if ai else []
    return authz.principal(ORG_A, user, ai=ai), narrowing


def _random_resource(work: Workload, rng: random.Random) -> Resource | None:
    if rng.random() < 0.1:
        return None
    return Resource(
        type="z.doc",
        id=str(rng.randint(1, 1000)),
        org_id=rng.choice([ORG_A, ORG_A, ORG_A, "", ORG_B]),
        owner_id=rng.choice([*work.users, None, None]),
        team_id=rng.choice([*work.teams, None, "no-such-team"]),
    )


def _resource_proto(resource: Resource) -> az.Resource:
    return az.Resource(
        type=resource.type,
        id=resource.id,
        org_id=resource.org_id,
        owner_id=resource.owner_id or "",
        team_id=resource.team_id or "",
    )


def _narrowing_proto(keys: list[str]) -> list[az.ScopedPermission]:
    return [az.ScopedPermission(permission=k, scope=az.SCOPE_ANY) for k in keys]


def _assert_same(local: LocalDecision, served: az.Decision, what: str) -> None:
    assert local.source == "local", what
    assert local.allowed == served.allowed, f"{what}: local {local.reason}"
    assert local.dangerous == served.dangerous, what
    assert local.revision == served.revision, what
    if not served.allowed:
        assert local.grant is None, what
        return
    assert local.grant == grant_from_proto(served.grant.permission), what
    assert local.held is not None, what
    assert local.held.source == served.grant.source, what
    assert local.held.role_id == served.grant.role_id, what
    assert local.held.assignment_id == served.grant.assignment_id, what


async def test_z1_local_evaluator_agrees_with_check_rpc_on_random_workload(
    authz: Authz, nats_client: Any
) -> None:
    rng = random.Random(20_251)
    work = await _random_workload(authz, rng)
    evaluator = authz.evaluator()
    await evaluator.start(nats_client)
    zookie = AtLeastAsFresh(work.revision)
    gateway = authz.as_service("gateway")
    allowed = 0
    try:
        for i in range(300):
            principal, narrowing = _random_principal(authz, work, rng)
            permission = rng.choice([*KEYS, UNKNOWN])
            resource = _random_resource(work, rng)
            consistency = zookie if i % 2 else MINIMIZE_LATENCY
            local = await evaluator.check(
                principal, permission, resource, consistency=consistency, ai_narrowing=narrowing
            )
            request = az.CheckRequest(
                principal=principal,
                permission=permission,
                consistency=az.Consistency(at_least_as_fresh=work.revision),
                ai_narrowing=_narrowing_proto(narrowing),
            )
            if resource is not None:
                request.resource.CopyFrom(_resource_proto(resource))
            served = (await gateway.Check(request)).decision
            what = f"#{i} {principal.actor_type} {permission} {resource} narrowing={narrowing}"
            _assert_same(local, served, what)
            allowed += local.allowed
    finally:
        await evaluator.close()
    assert 10 < allowed < 290  # the workload exercises both answers


async def test_z5_local_plans_agree_with_plan_list_rpc_on_random_workload(
    authz: Authz,
) -> None:
    rng = random.Random(5)
    work = await _random_workload(authz, rng)
    evaluator = authz.evaluator()
    gateway = authz.as_service("gateway")
    for user in [*work.users, str(uuid.uuid4())]:
        for ai in (False, True):
            principal = authz.principal(ORG_A, user, ai=ai)
            narrowing = rng.sample(KEYS, 2) if ai else []
            for permission in [*KEYS, UNKNOWN]:
                local = await evaluator.plan_list(
                    principal,
                    permission,
                    "z.doc",
                    consistency=AtLeastAsFresh(work.revision),
                    ai_narrowing=narrowing,
                )
                served = await gateway.PlanList(
                    az.PlanListRequest(
                        principal=principal,
                        permission=permission,
                        resource_type="z.doc",
                        consistency=az.Consistency(at_least_as_fresh=work.revision),
                        ai_narrowing=_narrowing_proto(narrowing),
                    )
                )
                assert local.source == "local"
                assert (
                    local.plan.kind.value
                    == az.PlanKind.Name(served.kind).removeprefix("PLAN_KIND_").lower()
                ), permission
                if local.plan.kind is PlanKind.CONDITIONAL:
                    assert local.plan.filter is not None
                    assert _normal(local.plan.filter) == _normal(
                        filter_from_proto(served.filter)
                    ), permission
                assert local.dangerous == served.dangerous, permission
                assert local.revision == served.revision, permission
    await evaluator.close()


def _normal(node: Filter) -> Filter:
    """`node` with one-value In leaves as Eq: the wire form does not tell them apart."""
    if isinstance(node, In) and len(node.values) == 1:
        return Eq(node.field, node.values[0])
    if isinstance(node, And):
        return And(tuple(_normal(c) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(_normal(c) for c in node.children))
    return node


async def _reader(authz: Authz) -> tuple[str, str, int]:
    """A role `reader` (z.doc.read:any) in org A held by a new user: (user, role, revision)."""
    await _register(authz)
    admin = authz.as_service("identity")
    role = await admin.CreateRole(
        az.CreateRoleRequest(
            org_id=ORG_A,
            name="reader",
            permissions=[az.ScopedPermission(permission="z.doc.read", scope=az.SCOPE_ANY)],
        )
    )
    user = str(uuid.uuid4())
    assigned = await admin.AssignRole(
        az.AssignRoleRequest(org_id=ORG_A, role_id=role.role.role_id, user_id=user)
    )
    return user, role.role.role_id, assigned.revision


async def _poll_until_denied(check: Any, bound: float) -> float:
    """Seconds until `check()` denies; fails after `bound` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < bound:
        decision: LocalDecision = await check()
        if not decision.allowed:
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    pytest.fail(f"still allowed after {bound} s")


async def test_z1_unassign_is_denied_at_once_with_its_revision_and_soon_without(
    authz: Authz,
) -> None:
    user, role, granted = await _reader(authz)
    principal = authz.principal(ORG_A, user)
    doc = Resource("z.doc", "d1", ORG_A)
    fresh = authz.evaluator()
    eventual = authz.evaluator()  # no NATS: converges within max_staleness (1 s)
    for evaluator in (fresh, eventual):
        warm = await evaluator.check(principal, "z.doc.read", doc)
        assert warm.allowed
        assert warm.revision >= granted

    unassigned = await authz.as_service("identity").UnassignRole(
        az.UnassignRoleRequest(org_id=ORG_A, role_id=role, user_id=user)
    )
    assert unassigned.revision > granted
    at_once = await fresh.check(
        principal, "z.doc.read", doc, consistency=AtLeastAsFresh(unassigned.revision)
    )
    assert not at_once.allowed
    assert at_once.source == "local"
    assert at_once.revision >= unassigned.revision

    waited = await _poll_until_denied(lambda: eventual.check(principal, "z.doc.read", doc), 10.0)
    assert waited < 10.0
    for evaluator in (fresh, eventual):
        await evaluator.close()


async def test_z1_policy_announcements_on_nats_drop_cached_snapshots(
    authz: Authz, nats_client: Any, db_connection: AsyncConnection
) -> None:
    """With a staleness allowance far beyond the test, only authz's PolicyChanged announcement
    can make the evaluator see the revocation. The announcements are taken from authz's outbox
    and published to NATS here: a stand-in for the outbox relay, which runs in authz's process
    and cannot share the test's rolled-back transaction."""
    user, role, _ = await _reader(authz)
    principal = authz.principal(ORG_A, user)
    evaluator = authz.evaluator(FreshnessPolicy(max_staleness=60.0, hard_ceiling=120.0))
    await evaluator.start(nats_client)
    assert (await evaluator.check(principal, "z.doc.read")).allowed
    relayed = await _relay_announcements(db_connection, nats_client, already=set())

    await authz.as_service("identity").UnassignRole(
        az.UnassignRoleRequest(org_id=ORG_A, role_id=role, user_id=user)
    )
    cached = await evaluator.check(principal, "z.doc.read")
    assert cached.allowed  # nothing announced yet: the cached snapshot still answers
    assert await _relay_announcements(db_connection, nats_client, already=relayed)
    await _poll_until_denied(lambda: evaluator.check(principal, "z.doc.read"), 5.0)
    await evaluator.close()


async def _relay_announcements(
    connection: AsyncConnection, nats_client: Any, already: set[str]
) -> set[str]:
    """Publish authz's not yet relayed `authz.policy.changed.*` outbox rows on core NATS;
    returns the ids published now and before."""
    rows = (
        await connection.execute(
            text(
                "SELECT id::text, subject, payload FROM authz.outbox"
                " WHERE subject LIKE 'authz.policy.changed.%' ORDER BY created_at, id"
            )
        )
    ).all()
    fresh = [r for r in rows if r.id not in already]
    for row in fresh:
        await nats_client.publish(row.subject, bytes(row.payload))
    await nats_client.flush()
    return already | {r.id for r in fresh}
