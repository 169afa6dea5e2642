"""LocalEvaluator against an in-memory stand-in of authz: local decisions, freshness, catalog
refresh, fallback to the RPC and failing closed (Z1, Z5, I2)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable

import pytest

from helios.authz_client.decisions import LocalDecision, LocalPlan
from helios.authz_client.evaluator import LocalEvaluator
from helios.authz_client.freshness import (
    FULLY_CONSISTENT,
    AtLeastAsFresh,
    Consistency,
    FreshnessPolicy,
)
from helios.authz_client.snapshot import (
    CatalogSnapshot,
    HeldGrant,
    SubjectSnapshot,
    snapshot_of,
)
from helios.authz_rules.dangerous import is_dangerous
from helios.authz_rules.evaluator import ActorType, Resource, Subject, decide
from helios.authz_rules.permissions import (
    Catalog,
    Grant,
    PermissionKey,
    Scope,
    parse_grant,
    permission,
)
from helios.authz_rules.plan import PlanKind, matches, plan_list
from helios.kernel.errors import InvalidArgumentError, UnavailableError
from helios.proto.authz.v1 import authz_pb2 as az
from helios.proto.common.v1 import principal_pb2

from .test_announcements import StandInNats

pytestmark = pytest.mark.unit

ORG, OTHER_ORG = "org-1", "org-2"
ROLE_SOURCE = az.GRANT_SOURCE_ROLE_ASSIGNMENT
ANY, TEAM, OWN = Scope.ANY, Scope.TEAM, Scope.OWN
SPECS = [
    permission("x.doc.read", "Read a document."),
    permission("x.doc.update", "Change a document.", scopes=(OWN, ANY)),
    permission("x.doc.delete", "Delete a document.", scopes=(ANY,)),
    permission("x.doc.share", "Share a document.", dangerous=True),
    permission("authz.role.assign", "Assign a role.", scopes=(ANY,)),
]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class InMemoryAuthz:
    """An in-memory stand-in for authz's RPCs (unit tests only; the integration tests run the
    real authz server): users' grants, teams and revisions in dicts, the same rules for its
    Check, every call counted, and any method can be made unavailable."""

    def __init__(self) -> None:
        self.specs = list(SPECS)
        self.catalog_revision = 1
        self.revision: Counter[str] = Counter({ORG: 1, OTHER_ORG: 1})
        self.held: dict[tuple[str, str], list[HeldGrant]] = {}
        self.teams: dict[tuple[str, str], frozenset[str]] = {}
        self.org_dangerous: dict[str, frozenset[str]] = {}
        self.calls: Counter[str] = Counter()
        self.consistencies: list[Consistency] = []
        self.down: set[str] = set()
        self.gate: asyncio.Event | None = None

    def grant(self, user: str, *grants: str, role: str = "role-1", org: str = ORG) -> int:
        held = self.held.setdefault((org, user), [])
        for raw in grants:
            held.append(
                HeldGrant(parse_grant(raw), role, f"name {role}", f"as-{role}", ROLE_SOURCE)
            )
        self.revision[org] += 1
        return self.revision[org]

    def revoke(self, user: str, role: str, org: str = ORG) -> int:
        self.held[(org, user)] = [h for h in self.held.get((org, user), []) if h.role_id != role]
        self.revision[org] += 1
        return self.revision[org]

    def register(self, key: str) -> None:
        self.specs.append(permission(key, "Added later."))
        self.catalog_revision += 1

    def _call(self, name: str) -> None:
        self.calls[name] += 1
        if name in self.down:
            raise UnavailableError("authz is unavailable, try again later")

    def _snapshot(self, principal: principal_pb2.Principal) -> SubjectSnapshot:
        key = (principal.org_id, principal.actor_id)
        return snapshot_of(
            principal.org_id,
            principal.actor_id,
            self.held.get(key, []),
            team_ids=self.teams.get(key, frozenset()),
            org_dangerous=self.org_dangerous.get(principal.org_id, frozenset()),
            revision=self.revision[principal.org_id],
            catalog_revision=self.catalog_revision,
        )

    def _subject(self, principal: principal_pb2.Principal, narrowing: frozenset[str]) -> Subject:
        snapshot = self._snapshot(principal)
        ai = principal.actor_type == principal_pb2.ACTOR_TYPE_AI
        return Subject(
            actor_type=ActorType.AI if ai else ActorType.USER,
            actor_id=principal.actor_id,
            org_id=principal.org_id,
            team_ids=snapshot.team_ids,
            grants=snapshot.grants,
            ai_narrowing=narrowing if ai and narrowing else None,
        )

    async def snapshot(
        self, principal: principal_pb2.Principal, consistency: Consistency
    ) -> SubjectSnapshot:
        self._call("snapshot")
        self.consistencies.append(consistency)
        if self.gate is not None:
            await self.gate.wait()
        return self._snapshot(principal)

    async def catalog(self) -> CatalogSnapshot:
        self._call("catalog")
        return CatalogSnapshot(Catalog(self.specs), self.catalog_revision)

    async def check(
        self,
        principal: principal_pb2.Principal,
        permission: PermissionKey,
        resource: Resource | None,
        consistency: Consistency,
        ai_narrowing: frozenset[str],
    ) -> LocalDecision:
        self._call("check")
        target = resource or Resource("", "", principal.org_id)
        catalog = Catalog(self.specs)
        decision = decide(self._subject(principal, ai_narrowing), permission, target, catalog)
        spec = catalog.get(permission)
        return LocalDecision(
            allowed=decision.allowed,
            grant=decision.grant,
            dangerous=spec is not None and is_dangerous(permission, spec.dangerous, frozenset()),
            revision=self.revision[principal.org_id],
            reason=decision.reason,
            source="rpc",
        )

    async def plan_list(
        self,
        principal: principal_pb2.Principal,
        permission: PermissionKey,
        resource_type: str,
        consistency: Consistency,
        ai_narrowing: frozenset[str],
    ) -> LocalPlan:
        self._call("plan")
        subject = self._subject(principal, ai_narrowing)
        plan = plan_list(subject, permission, resource_type, Catalog(self.specs))
        return LocalPlan(plan, False, self.revision[principal.org_id], "rpc")


def _user(user: str = "u1", org: str = ORG, ai: bool = False) -> principal_pb2.Principal:
    return principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_AI if ai else principal_pb2.ACTOR_TYPE_USER,
        actor_id=user,
        org_id=org,
        session_id="s1",
    )


def _doc(owner: str | None = None, team: str | None = None, org: str = ORG) -> Resource:
    return Resource("x.doc", "d1", org, owner, team)


@pytest.fixture
def authz() -> InMemoryAuthz:
    return InMemoryAuthz()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def evaluator(authz: InMemoryAuthz, clock: Clock) -> LocalEvaluator:
    return LocalEvaluator(
        authz, policy=FreshnessPolicy(max_staleness=1.0, hard_ceiling=30.0), clock=clock
    )


async def test_z1_local_check_decides_like_the_rules_with_the_deciding_grant(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    authz.grant("u1", "x.doc.read:team", "x.doc.update:own", role="editor")
    authz.grant("u1", "x.doc.read:any", role="reader")
    authz.teams[(ORG, "u1")] = frozenset({"t1"})
    authz.org_dangerous[ORG] = frozenset({"x.doc.update"})

    read = await evaluator.check(_user(), "x.doc.read", _doc(owner="u2"))
    assert read.allowed
    assert read.source == "local"
    assert read.grant == Grant(PermissionKey("x", "doc", "read"), ANY)
    assert read.held is not None
    assert read.held.role_id == "reader"
    assert read.revision == authz.revision[ORG]
    assert not read.dangerous

    own = await evaluator.check(_user(), "x.doc.update", _doc(owner="u1"))
    assert own.allowed
    assert own.grant == parse_grant("x.doc.update:own")
    assert own.dangerous  # marked by the org (D2)
    foreign = await evaluator.check(_user(), "x.doc.update", _doc(owner="u2", team="t1"))
    assert not foreign.allowed
    assert foreign.grant is None
    assert foreign.held is None
    assert "does not reach" in foreign.reason

    elsewhere = await evaluator.check(_user(), "x.doc.read", _doc(org=OTHER_ORG))
    assert not elsewhere.allowed
    assert "another org" in elsewhere.reason
    type_level = await evaluator.check(_user(), "x.doc.read")
    assert type_level.allowed  # None: a type-level check in the principal's org
    same_org = await evaluator.check(_user(), "x.doc.read", Resource("x.doc", "d", ""))
    assert same_org.allowed

    delete = await evaluator.check(_user(), "x.doc.delete", _doc(owner="u1"))
    assert not delete.allowed
    assert delete.dangerous  # D1 default class
    share = await evaluator.check(_user(), "x.doc.share", _doc(owner="u1"))
    assert share.dangerous  # the spec's own flag
    assert authz.calls["snapshot"] == 1
    assert authz.calls["catalog"] == 1
    assert authz.calls["check"] == 0


async def test_z1_minimize_latency_refetches_after_max_staleness_without_nats(
    authz: InMemoryAuthz, evaluator: LocalEvaluator, clock: Clock
) -> None:
    authz.grant("u1", "x.doc.read:any", role="reader")
    assert (await evaluator.check(_user(), "x.doc.read")).allowed
    authz.revoke("u1", "reader")
    clock.now += 0.5
    stale = await evaluator.check(_user(), "x.doc.read")
    assert stale.allowed  # within max_staleness: the cached snapshot answers
    assert authz.calls["snapshot"] == 1
    clock.now += 0.5
    assert not (await evaluator.check(_user(), "x.doc.read")).allowed
    assert authz.calls["snapshot"] == 2


async def test_z1_announced_snapshots_last_until_the_hard_ceiling_and_drop_at_once(
    authz: InMemoryAuthz, evaluator: LocalEvaluator, clock: Clock
) -> None:
    authz.grant("u1", "x.doc.read:any", role="reader")
    authz.grant("u2", "x.doc.read:any", role="reader")
    nats = StandInNats()
    await evaluator.start(nats)
    assert (await evaluator.check(_user("u1"), "x.doc.read")).allowed
    assert (await evaluator.check(_user("u2"), "x.doc.read")).allowed
    clock.now += 20
    assert (await evaluator.check(_user("u1"), "x.doc.read")).allowed
    assert authz.calls["snapshot"] == 2  # covered by announcements: no refetch

    revision = authz.revoke("u1", "reader")
    evaluator.policy_changed(ORG, revision, ["u1"])
    assert not (await evaluator.check(_user("u1"), "x.doc.read")).allowed
    assert authz.consistencies[-1] == AtLeastAsFresh(revision)  # no stale cache in authz
    assert (await evaluator.check(_user("u2"), "x.doc.read")).allowed
    assert authz.calls["snapshot"] == 3  # only u1 was dropped

    clock.now += 10.5  # u2's snapshot is now 30.5 s old: past the hard ceiling
    assert (await evaluator.check(_user("u2"), "x.doc.read")).allowed
    assert authz.calls["snapshot"] == 4

    nats.stats["reconnects"] += 1  # announcements may have been lost: coverage restarts
    clock.now += 2
    await evaluator.check(_user("u2"), "x.doc.read")
    assert authz.calls["snapshot"] == 5
    await evaluator.close()


async def test_z1_at_least_as_fresh_uses_the_cache_only_at_or_past_the_revision(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    written = authz.grant("u1", "x.doc.read:any", role="reader")
    assert (await evaluator.check(_user(), "x.doc.read")).allowed
    same = await evaluator.check(_user(), "x.doc.read", consistency=AtLeastAsFresh(written))
    assert same.allowed
    assert authz.calls["snapshot"] == 1

    revoked = authz.revoke("u1", "reader")
    fresh = await evaluator.check(_user(), "x.doc.read", consistency=AtLeastAsFresh(revoked))
    assert not fresh.allowed
    assert fresh.revision == revoked
    assert authz.calls["snapshot"] == 2
    assert authz.consistencies[-1] == AtLeastAsFresh(revoked)


async def test_z1_fully_consistent_fetches_every_time(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    authz.grant("u1", "x.doc.read:any")
    for _ in range(3):
        decision = await evaluator.check(_user(), "x.doc.read", consistency=FULLY_CONSISTENT)
        assert decision.allowed
        assert decision.source == "local"
    assert authz.calls["snapshot"] == 3
    assert authz.consistencies == [FULLY_CONSISTENT] * 3


async def test_z1_an_unknown_permission_refreshes_the_catalog_once_then_denies(
    authz: InMemoryAuthz, evaluator: LocalEvaluator, clock: Clock
) -> None:
    authz.grant("u1", "x.doc.read:any")
    unknown = await evaluator.check(_user(), "x.doc.publish")
    assert not unknown.allowed
    assert unknown.reason == "unknown permission x.doc.publish"
    assert not unknown.dangerous
    assert authz.calls["catalog"] == 1  # the first fetch; the key was unknown in it
    clock.now += 0.5
    await evaluator.check(_user(), "x.doc.publish")
    assert authz.calls["catalog"] == 1  # refreshed moments ago: no flood of refreshes
    clock.now += 1
    await evaluator.check(_user(), "x.doc.publish")
    assert authz.calls["catalog"] == 2

    authz.register("x.doc.publish")  # catalog revision 2; snapshots now name it
    written = authz.grant("u1", "x.doc.publish:any")
    published = await evaluator.check(_user(), "x.doc.publish", consistency=AtLeastAsFresh(written))
    assert published.allowed
    assert authz.calls["catalog"] == 3  # fetched at once for the newer revision


async def test_z1_a_malformed_key_raises_the_rules_error_before_any_call(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    with pytest.raises(InvalidArgumentError, match="three dot-separated parts"):
        await evaluator.check(_user(), "x.doc")
    with pytest.raises(InvalidArgumentError):
        await evaluator.check(_user(ai=True), "x.doc.read", ai_narrowing=["x..read"])
    with pytest.raises(InvalidArgumentError, match="principal"):
        await evaluator.check(principal_pb2.Principal(actor_id="u1"), "x.doc.read")
    with pytest.raises(InvalidArgumentError, match="resource_type"):
        await evaluator.plan_list(_user(), "x.doc.read", "")
    assert sum(authz.calls.values()) == 0


async def test_z1_an_unavailable_snapshot_falls_back_to_the_check_rpc(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    authz.grant("u1", "x.doc.read:any")
    authz.down = {"snapshot"}
    decision = await evaluator.check(_user(), "x.doc.read")
    assert decision.allowed
    assert decision.source == "rpc"
    plan = await evaluator.plan_list(_user(), "x.doc.read", "x.doc")
    assert plan.source == "rpc"
    authz.down = {"catalog"}
    decision = await evaluator.check(_user(), "x.doc.read")
    assert decision.source == "rpc"
    assert authz.calls["check"] == 2


async def test_z1_fails_closed_when_the_fallback_fails_too(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    authz.grant("u1", "x.doc.read:any")
    authz.down = {"snapshot", "check", "plan"}
    with pytest.raises(UnavailableError):
        await evaluator.check(_user(), "x.doc.read")
    with pytest.raises(UnavailableError):
        await evaluator.plan_list(_user(), "x.doc.read", "x.doc")


async def test_z1_other_failures_propagate_without_a_fallback(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    async def broken(principal: principal_pb2.Principal, consistency: Consistency) -> None:
        raise RuntimeError("a deployment fault")

    authz.snapshot = broken  # type: ignore[method-assign, assignment]
    with pytest.raises(RuntimeError, match="deployment fault"):
        await evaluator.check(_user(), "x.doc.read")
    assert authz.calls["check"] == 0


async def test_z1_i2_an_ai_principal_is_narrowed_and_never_escalates(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    authz.grant("u1", "x.doc.read:any", "x.doc.update:any", "authz.role.assign:any")
    ai = _user(ai=True)
    assert (await evaluator.check(ai, "x.doc.update")).allowed  # no narrowing: the user's rights
    narrowed = await evaluator.check(ai, "x.doc.update", ai_narrowing=["x.doc.read"])
    assert not narrowed.allowed
    assert "narrowing" in narrowed.reason
    assert (await evaluator.check(ai, "x.doc.read", ai_narrowing=["x.doc.read"])).allowed
    escalation = await evaluator.check(ai, "authz.role.assign", ai_narrowing=["authz.role.assign"])
    assert not escalation.allowed
    assert (await evaluator.check(_user(), "authz.role.assign")).allowed
    plan = await evaluator.plan_list(ai, "x.doc.update", "x.doc", ai_narrowing=["x.doc.read"])
    assert plan.plan.kind is PlanKind.ALWAYS_DENIED


async def test_z5_local_plan_keeps_exactly_the_rows_local_check_allows(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    authz.grant("u1", "x.doc.read:team", "x.doc.update:own")
    authz.teams[(ORG, "u1")] = frozenset({"t1", "t2"})
    rng = random.Random(5)
    rows = [
        Resource(
            "x.doc",
            str(i),
            rng.choice([ORG, ORG, OTHER_ORG]),
            rng.choice(["u1", "u2", None]),
            rng.choice(["t1", "t3", None]),
        )
        for i in range(60)
    ]
    for key in ("x.doc.read", "x.doc.update", "x.doc.delete", "x.doc.publish"):
        plan = await evaluator.plan_list(_user(), key, "x.doc")
        assert plan.source == "local"
        for row in rows:
            assert matches(plan.plan, row) == (await evaluator.check(_user(), key, row)).allowed


async def test_z1_concurrent_checks_of_one_subject_share_one_fetch(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    authz.grant("u1", "x.doc.read:any")
    authz.gate = asyncio.Event()
    checks = [asyncio.ensure_future(evaluator.check(_user(), "x.doc.read")) for _ in range(10)]
    await asyncio.sleep(0)
    checks[0].cancel()  # one caller gives up: the others still get their answer
    authz.gate.set()
    results = await asyncio.gather(*checks[1:])
    assert all(r.allowed for r in results)
    assert authz.calls["snapshot"] == 1


async def test_z1_close_forgets_snapshots_and_catalog(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    authz.grant("u1", "x.doc.read:any")
    await evaluator.start(None)
    await evaluator.check(_user(), "x.doc.read")
    await evaluator.close()
    await evaluator.close()
    await evaluator.check(_user(), "x.doc.read")
    assert authz.calls["snapshot"] == 2
    assert authz.calls["catalog"] == 2


def _users(names: Iterable[str]) -> list[principal_pb2.Principal]:
    return [_user(n) for n in names]


async def test_z1_catalog_announcement_refreshes_before_the_next_decision(
    authz: InMemoryAuthz, evaluator: LocalEvaluator
) -> None:
    authz.grant("u1", "x.doc.read:any")
    for principal in _users(["u1", "u2"]):
        await evaluator.check(principal, "x.doc.read")
    assert authz.calls["catalog"] == 1
    authz.register("x.doc.archive")
    evaluator.catalog_changed(authz.catalog_revision)
    await evaluator.check(_user("u1"), "x.doc.read")
    assert authz.calls["catalog"] == 2
