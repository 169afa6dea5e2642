"""Authz figures: Check over gRPC vs a no-op call; the local evaluator vs pycasbin on the same
RBAC-with-domains policy; Check latency as the org's role assignments grow (it stays flat)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import casbin  # type: ignore[import-untyped]
import nats
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness import Call, Figure, drive, measure, percentile
from helios.authz_client.evaluator import LocalEvaluator
from helios.authz_client.freshness import AtLeastAsFresh, Consistency
from helios.authz_client.rpc import GrpcAuthzSource
from helios.authz_client.snapshot import CatalogSnapshot, SubjectSnapshot
from helios.authz_rules.evaluator import Resource
from helios.devstack.stack import Stack
from helios.kernel.clients import secure_channel
from helios.proto.authz.v1 import authz_pb2 as az
from helios.proto.authz.v1 import authz_pb2_grpc
from helios.proto.common.v1 import principal_pb2

if TYPE_CHECKING:
    from helios.proto.authz.v1.authz_pb2_grpc import AuthzServiceAsyncStub

__all__ = ["authz_figures"]

AUTHZ_BASELINE = "grpc authz Health/Check"
CASBIN_BASELINE = "pycasbin enforce (1,100 rules)"
TIMEOUT = 60.0
SERVICE = "identity"  # the Helios service identity the bench calls authz as

# The policy of (b): 4 domains (orgs) of 25 roles; role r holds 11 permissions, one per verb, on
# 11 of the 20 resource types; user r holds role r in its domain. 100 x 11 = 1,100 policy rules
# and 100 role assignments. The bench user holds a role from the middle of the policy, so
# pycasbin's scan (which stops at the first allowing rule) is neither best nor worst case.
DOMAINS, ROLES, RESOURCES = 4, 100, 20
VERBS = (
    "read",
    "list",
    "create",
    "update",
    "delete",
    "share",
    "export",
    "import",
    "approve",
    "archive",
    "restore",
)
BENCH_ROLE = 48
CASBIN_MODEL = """
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
"""
# (c): orgs whose assignment tables hold this many live role assignments, one of them the bench
# user's; all are loaded before any is measured, so only the org's size differs.
ASSIGNMENT_COUNTS = (10, 1_000, 100_000)
ROLES_PER_SCALED_ORG = 10


def resource_type(index: int) -> str:
    return f"bench.res{index}"


def role_permissions(role: int) -> list[tuple[str, str]]:
    """(resource type, verb) pairs role `role` grants."""
    return [(resource_type((role + j) % RESOURCES), verb) for j, verb in enumerate(VERBS)]


def grants_of(role: int) -> list[az.ScopedPermission]:
    return [
        az.ScopedPermission(permission=f"{obj}.{act}", scope=az.SCOPE_ANY)
        for obj, act in role_permissions(role)
    ]


def user_principal(org_id: str, user_id: str) -> principal_pb2.Principal:
    return principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER,
        actor_id=user_id,
        org_id=org_id,
        session_id=str(uuid.uuid4()),
    )


def check_request(
    principal: principal_pb2.Principal, obj: str, act: str, org_id: str, fresh: bool
) -> az.CheckRequest:
    consistency = (
        az.Consistency(fully_consistent=True) if fresh else az.Consistency(minimize_latency=True)
    )
    return az.CheckRequest(
        principal=principal,
        permission=f"{obj}.{act}",
        resource=az.Resource(type=obj, id="doc-1", org_id=org_id),
        consistency=consistency,
    )


@dataclass(frozen=True)
class Policy:
    """The policy of (b) as authz holds it: domain i is org `orgs[i]`, user r is `users[r]`."""

    orgs: list[str]
    users: list[str]
    revisions: dict[str, int]  # the last write's revision per org

    @property
    def bench_user(self) -> str:
        return self.users[BENCH_ROLE]

    @property
    def bench_org(self) -> str:
        return self.orgs[BENCH_ROLE % DOMAINS]


def casbin_enforcer(policy: Policy) -> Any:
    """pycasbin's Enforcer with the model above and the same rules as `policy`."""
    enforcer = casbin.Enforcer(casbin.Enforcer.new_model(text=CASBIN_MODEL))
    rules: list[list[str]] = []
    links: list[list[str]] = []
    for role in range(ROLES):
        domain = policy.orgs[role % DOMAINS]
        rules.extend([f"role-{role}", domain, obj, act] for obj, act in role_permissions(role))
        links.append([policy.users[role], f"role-{role}", domain])
    if not (enforcer.add_policies(rules) and enforcer.add_grouping_policies(links)):
        raise RuntimeError("pycasbin refused the bench policy")
    if len(enforcer.get_policy()) != 1_100:
        raise RuntimeError(f"pycasbin holds {len(enforcer.get_policy())} rules, not 1,100")
    return enforcer  # Any: pycasbin ships no type information


async def register_catalog(stub: AuthzServiceAsyncStub) -> None:
    definitions = [
        az.PermissionDefinition(
            key=f"{resource_type(i)}.{verb}",
            description="A bench permission.",
            allowed_scopes=[az.SCOPE_ANY],
        )
        for i in range(RESOURCES)
        for verb in VERBS
    ]
    await stub.RegisterPermissions(
        az.RegisterPermissionsRequest(service=SERVICE, permissions=definitions), timeout=TIMEOUT
    )


async def create_policy(stub: AuthzServiceAsyncStub) -> Policy:
    """The 100 roles in their orgs and one user per role, through authz's RPCs."""
    orgs = [str(uuid.uuid4()) for _ in range(DOMAINS)]
    users = [str(uuid.uuid4()) for _ in range(ROLES)]
    revisions: dict[str, int] = {}
    for role in range(ROLES):
        org = orgs[role % DOMAINS]
        created = await stub.CreateRole(
            az.CreateRoleRequest(org_id=org, name=f"role-{role}", permissions=grants_of(role)),
            timeout=TIMEOUT,
        )
        assigned = await stub.AssignRole(
            az.AssignRoleRequest(org_id=org, role_id=created.role.role_id, user_id=users[role]),
            timeout=TIMEOUT,
        )
        revisions[org] = max(revisions.get(org, 0), created.revision, assigned.revision)
    return Policy(orgs, users, revisions)


class CountingSource(GrpcAuthzSource):
    """GrpcAuthzSource counting what the evaluator asked authz for."""

    fetches = 0

    async def snapshot(
        self, principal: principal_pb2.Principal, consistency: Consistency
    ) -> SubjectSnapshot:
        self.fetches += 1
        return await super().snapshot(principal, consistency)

    async def catalog(self) -> CatalogSnapshot:
        self.fetches += 1
        return await super().catalog()


def agreement_sample(policy: Policy) -> Iterator[tuple[str, str, str]]:
    """(domain, obj, act): every permission of the catalog in the bench user's domain (11
    allowed, 209 denied), and the bench user's own permissions in each other domain (denied)."""
    home = policy.bench_org
    for i in range(RESOURCES):
        for verb in VERBS:
            yield home, resource_type(i), verb
    for domain in policy.orgs:
        if domain != home:
            for obj, act in role_permissions(BENCH_ROLE):
                yield domain, obj, act


def timed_requests(policy: Policy) -> list[tuple[str, str, str]]:
    """What both in-process figures ask in turn: the bench user's 11 permissions (allowed),
    each followed by another resource type with the same verb in the same domain (denied)."""
    home = policy.bench_org
    requests = []
    for j, (obj, act) in enumerate(role_permissions(BENCH_ROLE)):
        requests.append((home, obj, act))
        requests.append((home, resource_type((BENCH_ROLE + j + 1) % RESOURCES), act))
    return requests


async def rpc_figures(
    stub: AuthzServiceAsyncStub,
    health: health_pb2_grpc.HealthStub,
    policy: Policy,
    calls: int,
    concurrency: int,
) -> list[Figure]:
    """(a) Check for an allowed request, from the replica's subject cache and fully consistent,
    vs authz's Health/Check on the same channel."""
    principal = user_principal(policy.bench_org, policy.bench_user)
    obj, act = role_permissions(BENCH_ROLE)[0]
    cached_request = check_request(principal, obj, act, policy.bench_org, fresh=False)
    fresh_request = check_request(principal, obj, act, policy.bench_org, fresh=True)

    async def health_check() -> None:
        reply = await health.Check(  # type: ignore[attr-defined]  # stubs: sync only
            health_pb2.HealthCheckRequest(), timeout=TIMEOUT
        )
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError(f"authz health is {reply.status}")

    async def cached() -> None:
        reply = await stub.Check(cached_request, timeout=TIMEOUT)
        if not reply.decision.allowed:
            raise RuntimeError(f"Check (cached) denied: {reply.decision.deny_reason}")

    async def fresh() -> None:
        reply = await stub.Check(fresh_request, timeout=TIMEOUT)
        if not reply.decision.allowed:
            raise RuntimeError(f"Check (fully_consistent) denied: {reply.decision.deny_reason}")

    return [
        await measure(AUTHZ_BASELINE, health_check, calls, concurrency, AUTHZ_BASELINE),
        await measure("grpc authz Check (cached)", cached, calls, concurrency, AUTHZ_BASELINE),
        await measure(
            "grpc authz Check (fully_consistent)", fresh, calls, concurrency, AUTHZ_BASELINE
        ),
    ]


async def evaluator_figures(
    stack: Stack, stub: AuthzServiceAsyncStub, policy: Policy, calls: int
) -> list[Figure]:
    """(b) LocalEvaluator.check answering from its snapshot (kept valid by authz's NATS
    announcements) vs pycasbin's Enforcer.enforce, in this process, one call at a time, both
    asking the same questions of the same policy; first they must agree on every sampled one."""
    enforcer = casbin_enforcer(policy)
    source = CountingSource(stub, timeout=TIMEOUT)
    evaluator = LocalEvaluator(source)
    principal = user_principal(policy.bench_org, policy.bench_user)
    client = await nats.connect(stack.nats_url, name="bench-authz", connect_timeout=5)
    try:
        await evaluator.start(client)
        # The snapshot at the revision of the bench's last write, so no late announcement of
        # the set-up drops it.
        warm = AtLeastAsFresh(policy.revisions[policy.bench_org])
        allowed = denied = 0
        for domain, obj, act in agreement_sample(policy):
            local = await evaluator.check(
                principal, f"{obj}.{act}", Resource(obj, "doc-1", domain), consistency=warm
            )
            expected = bool(enforcer.enforce(policy.bench_user, domain, obj, act))
            if local.allowed != expected or local.source != "local":
                raise RuntimeError(
                    f"{domain} {obj}.{act}: local evaluator {local.allowed} ({local.source}: "
                    f"{local.reason}), pycasbin {expected}"
                )
            allowed += local.allowed
            denied += not local.allowed
        if allowed != len(VERBS) or not denied:
            raise RuntimeError(f"agreement sample: {allowed} allowed, {denied} denied")
        print(
            f"authz: local evaluator and pycasbin agree on {allowed} allowed and {denied} denied "
            "requests (1,100 rules: 100 roles x 11 permissions in 4 domains, 100 assignments)",
            flush=True,
        )

        requests = timed_requests(policy)
        asked = [(principal.actor_id, *request) for request in requests]
        resources = [(f"{obj}.{act}", Resource(obj, "doc-1", dom)) for dom, obj, act in requests]
        turn = [0, 0]

        async def enforce() -> None:
            turn[0] += 1
            user, dom, obj, act = asked[turn[0] % len(asked)]
            enforcer.enforce(user, dom, obj, act)

        async def local_check() -> None:
            turn[1] += 1
            permission, resource = resources[turn[1] % len(resources)]
            decision = await evaluator.check(principal, permission, resource)
            if decision.source != "local":
                raise RuntimeError(f"the local evaluator fell back to the RPC: {decision.reason}")

        fetched = source.fetches
        figures = [
            await measure(CASBIN_BASELINE, enforce, max(50, calls // 4), 1, CASBIN_BASELINE),
            await measure("local evaluator check", local_check, calls * 10, 1, CASBIN_BASELINE),
        ]
        rates = [figure.calls / figure.seconds for figure in figures]
        print(
            f"authz: local evaluator {rates[1]:,.0f} checks/s = {rates[1] / rates[0]:,.0f}x "
            f"pycasbin's {rates[0]:,.0f}; it fetched {source.fetches - fetched} snapshots or "
            "catalogs during its measured and warm-up calls",
            flush=True,
        )
        return figures
    finally:
        await evaluator.close()
        await client.drain()


async def scaled_org(
    stub: AuthzServiceAsyncStub, database_url: str, assignments: int
) -> tuple[str, str, int]:
    """An org with `assignments` live role assignments: the bench user's (AssignRole) and
    others' copied straight into authz.assignments at one new org revision. Returns (org, user,
    revision)."""
    org, user = str(uuid.uuid4()), str(uuid.uuid4())
    roles = []
    for role in range(ROLES_PER_SCALED_ORG):
        created = await stub.CreateRole(
            az.CreateRoleRequest(org_id=org, name=f"role-{role}", permissions=grants_of(role)),
            timeout=TIMEOUT,
        )
        roles.append(uuid.UUID(created.role.role_id))
    await stub.AssignRole(
        az.AssignRoleRequest(org_id=org, role_id=str(roles[0]), user_id=user), timeout=TIMEOUT
    )
    now = dt.datetime.now(dt.UTC)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        async with conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO authz.org_revisions (org_id, revision) VALUES (%s, 1)"
                " ON CONFLICT (org_id) DO UPDATE SET revision = authz.org_revisions.revision + 1"
                " RETURNING revision",
                (org,),
            )
            row = await cursor.fetchone()
            if row is None:
                raise RuntimeError("authz.org_revisions returned no revision")
            revision = int(row[0])
            copy_sql = (
                "COPY authz.assignments (id, org_id, user_id, role_id, granted_by, created_at,"
                " added_revision) FROM STDIN"
            )
            async with conn.cursor().copy(copy_sql) as copy:
                for i in range(assignments - 1):
                    await copy.write_row(
                        (
                            uuid.uuid4(),
                            org,
                            str(uuid.uuid4()),
                            roles[i % len(roles)],
                            f"service:{SERVICE}",
                            now,
                            revision,
                        )
                    )
        cursor = await conn.execute(
            "SELECT count(*) FROM authz.assignments WHERE org_id = %s AND removed_revision IS NULL",
            (org,),
        )
        counted = await cursor.fetchone()
        if counted is None or int(counted[0]) != assignments:
            raise RuntimeError(f"org {org} holds {counted} assignments, not {assignments}")
    return org, user, revision


async def scale_figures(
    stack: Stack, stub: AuthzServiceAsyncStub, calls: int, concurrency: int
) -> list[Figure]:
    """(c) Check, fully consistent (so every call reads PostgreSQL), for a user of an org with
    10, 1,000 and 100,000 role assignments; the 10 one is the baseline. Measured interleaved."""
    started = time.perf_counter()
    orgs = [(n, *await scaled_org(stub, stack.database_url, n)) for n in ASSIGNMENT_COUNTS]
    async with await psycopg.AsyncConnection.connect(stack.database_url, autocommit=True) as conn:
        # What autovacuum would do after the load, done now so that it does not run during
        # the figures.
        await conn.execute("VACUUM (ANALYZE) authz.assignments")
    sizes = ", ".join(f"{n:,}" for n in ASSIGNMENT_COUNTS)
    print(
        f"authz: orgs of {sizes} role assignments set up in {time.perf_counter() - started:.1f} s"
        " (all loaded before any is measured; consistency fully_consistent)",
        flush=True,
    )
    checks: list[tuple[str, Call]] = []
    for count, org, user, revision in orgs:
        obj, act = role_permissions(0)[0]
        request = check_request(user_principal(org, user), obj, act, org, fresh=True)

        async def check(request: az.CheckRequest = request, revision: int = revision) -> None:
            decision = (await stub.Check(request, timeout=TIMEOUT)).decision
            if not decision.allowed or decision.revision < revision:
                raise RuntimeError(
                    f"Check answered allowed={decision.allowed} at revision "
                    f"{decision.revision} (the org is at {revision})"
                )

        checks.append((f"grpc authz Check (fully_consistent, {count:,} assignments)", check))
    return await interleaved(checks, calls, concurrency)


async def interleaved(checks: list[tuple[str, Call]], calls: int, concurrency: int) -> list[Figure]:
    """measure() for figures that must differ only in what they call: the stack slows a little
    as a run goes on, which would show as a trend across figures measured one after the other.
    So each is warmed up, then measured in two halves in the order A B C C B A, which cancels a
    steady drift; the first is the baseline of the others."""
    for _, call in checks:
        await drive(call, max(concurrency, calls // 20), concurrency)
    seconds = [0.0] * len(checks)
    latencies: list[list[float]] = [[] for _ in checks]
    halves = (calls // 2, calls - calls // 2)
    for order, half in ((range(len(checks)), halves[0]), (reversed(range(len(checks))), halves[1])):
        for i in order:
            took, measured = await drive(checks[i][1], half, concurrency)
            seconds[i] += took
            latencies[i].extend(measured)
    baseline = checks[0][0]
    figures = []
    for (name, _), took, measured in zip(checks, seconds, latencies, strict=True):
        ordered = sorted(measured)
        p50, p99 = percentile(ordered, 0.50) * 1000, percentile(ordered, 0.99) * 1000
        figures.append(Figure(name, calls, concurrency, took, p50, p99, (baseline,)))
    return figures


async def authz_figures(stack: Stack, calls: int, concurrency: int) -> list[Figure]:
    """(a) Check RPC vs authz's Health/Check; (b) local evaluator vs pycasbin on 1,100 rules;
    (c) Check latency in orgs of 10, 1,000 and 100,000 role assignments."""
    target = f"localhost:{stack.ports['authz']}"
    async with secure_channel(target, stack.certs(SERVICE)) as channel:
        stub = authz_pb2_grpc.AuthzServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        started = time.perf_counter()
        await register_catalog(stub)
        policy = await create_policy(stub)
        print(
            f"authz: {ROLES} roles and {ROLES} assignments in {DOMAINS} orgs created through "
            f"the RPCs in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        return [
            *await rpc_figures(stub, health, policy, calls, concurrency),
            *await evaluator_figures(stack, stub, policy, calls),
            *await scale_figures(stack, stub, calls, concurrency),
        ]
