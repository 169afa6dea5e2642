"""decide() and plan_list(): scopes, tenancy, AI narrowing, platform root (Z1, Z5, Z6, I2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios.authz_rules.evaluator import ActorType, Resource, Subject, decide
from helios.authz_rules.permissions import Catalog, Grant, Scope, parse_grant, permission
from helios.authz_rules.plan import And, Eq, In, Or, PlanKind, matches, plan_list
from helios.kernel.errors import InvalidArgumentError

pytestmark = pytest.mark.unit

ANY, TEAM, OWN = Scope.ANY, Scope.TEAM, Scope.OWN

CATALOG = Catalog(
    [
        permission("recruitment.offer.send", "Send an offer."),
        permission("recruitment.candidate.read", "Read a candidate."),
        permission("recruitment.candidate.delete", "Delete a candidate.", scopes=(OWN, TEAM)),
        permission("hr.note.create", "Write a note.", scopes=(OWN,)),
        permission("authz.role.assign", "Assign a role.", scopes=(ANY,)),
        permission("iam.user.impersonate", "Act as another user.", scopes=(ANY,)),
        permission("platform.org.suspend", "Suspend an org.", scopes=(ANY,)),
    ]
)
KEYS = [str(s.key) for s in CATALOG]
UNKNOWN = "recruitment.offer.withdraw"
ORGS = ["org-a", "org-b"]
USERS = ["u1", "u2", "u3"]
TEAMS = ["t1", "t2", "t3"]
FAST = settings(max_examples=150, deadline=None)

# Grants over every catalog key and scope, including ones the spec refuses and platform ones.
ALL_GRANTS = [Grant(s.key, scope) for s in CATALOG for scope in Scope]
grants_st = st.tuples(st.permutations(ALL_GRANTS), st.integers(2, 12)).map(
    lambda p: frozenset(p[0][: p[1]])
)
resource_st = st.builds(
    Resource,
    st.just("thing"),
    st.sampled_from(["r1", "r2"]),
    st.sampled_from(ORGS),
    st.none() | st.sampled_from(USERS),
    st.none() | st.sampled_from(TEAMS),
)
subject_st = st.builds(
    Subject,
    st.sampled_from([ActorType.USER, ActorType.USER, ActorType.SYSTEM, ActorType.AI]),
    st.sampled_from(USERS),
    st.sampled_from(ORGS),
    st.frozensets(st.sampled_from(TEAMS)),
    grants_st,
    st.none() | st.frozensets(st.sampled_from([*KEYS, UNKNOWN]), min_size=3),
    st.sampled_from([False, False, False, True]),
)
key_st = st.sampled_from([*KEYS, UNKNOWN])


def _key_for(subject: Subject) -> st.SearchStrategy[str]:
    """Mostly a key the subject holds, so that allowed rows are common; sometimes any key."""
    held = sorted({str(g.key) for g in subject.grants})
    return st.sampled_from(held) | key_st if held else key_st


def _user(*grants: str, teams: frozenset[str] = frozenset({"t1"}), root: bool = False) -> Subject:
    return Subject(
        ActorType.USER,
        "u1",
        "org-a",
        team_ids=teams,
        grants=frozenset(parse_grant(g) for g in grants),
        is_platform_root=root,
    )


def _res(owner: str | None = None, team: str | None = None, org: str = "org-a") -> Resource:
    return Resource("candidate", "c1", org, owner_id=owner, team_id=team)


def test_z1_unknown_permission_is_denied_not_an_error() -> None:
    decision = decide(_user("recruitment.offer.send:any"), UNKNOWN, _res(), CATALOG)
    assert not decision.allowed
    assert decision.reason == f"unknown permission {UNKNOWN}"
    assert plan_list(_user(), UNKNOWN, "offer", CATALOG).kind is PlanKind.ALWAYS_DENIED


@pytest.mark.parametrize("key", ["recruitment.offer", "Recruitment.offer.send", "a.b.c.d", ""])
def test_z1_malformed_key_raises_invalid_argument(key: str) -> None:
    with pytest.raises(InvalidArgumentError, match="permission key"):
        decide(_user(), key, _res(), CATALOG)
    with pytest.raises(InvalidArgumentError, match="permission key"):
        plan_list(_user(), key, "offer", CATALOG)


@pytest.mark.parametrize(
    ("grant", "resource", "allowed"),
    [
        ("recruitment.candidate.read:own", _res(owner="u1"), True),
        ("recruitment.candidate.read:own", _res(owner="u2", team="t1"), False),
        ("recruitment.candidate.read:own", _res(), False),
        ("recruitment.candidate.read:team", _res(owner="u2", team="t1"), True),
        ("recruitment.candidate.read:team", _res(owner="u1", team="t2"), True),
        ("recruitment.candidate.read:team", _res(owner="u2", team="t2"), False),
        ("recruitment.candidate.read:team", _res(), False),
        ("recruitment.candidate.read:any", _res(), True),
        ("recruitment.candidate.read:any", _res(org="org-b"), False),
    ],
)
def test_z5_scopes(grant: str, resource: Resource, allowed: bool) -> None:
    decision = decide(_user(grant), "recruitment.candidate.read", resource, CATALOG)
    assert decision.allowed is allowed
    assert decision.grant == (parse_grant(grant) if allowed else None)


def test_z5_broadest_grant_decides() -> None:
    subject = _user("recruitment.candidate.read:own", "recruitment.candidate.read:any")
    decision = decide(subject, "recruitment.candidate.read", _res(owner="u1"), CATALOG)
    assert decision.grant == parse_grant("recruitment.candidate.read:any")


def test_z5_grant_with_a_scope_the_spec_refuses_counts_for_nothing() -> None:
    subject = _user("hr.note.create:any")
    assert not decide(subject, "hr.note.create", _res(owner="u2"), CATALOG).allowed
    assert plan_list(subject, "hr.note.create", "note", CATALOG).kind is PlanKind.ALWAYS_DENIED


def test_z5_plan_filters_by_org_and_scope() -> None:
    subject = _user("recruitment.candidate.read:team", teams=frozenset({"t2", "t1"}))
    plan = plan_list(subject, "recruitment.candidate.read", "candidate", CATALOG)
    assert plan.kind is PlanKind.CONDITIONAL
    assert plan.filter == And(
        (Eq("org_id", "org-a"), Or((Eq("owner_id", "u1"), In("team_id", ("t1", "t2")))))
    )
    own = plan_list(_user("hr.note.create:own"), "hr.note.create", "note", CATALOG)
    assert own.filter == And((Eq("org_id", "org-a"), Eq("owner_id", "u1")))
    anyone = plan_list(_user("recruitment.offer.send:any"), "recruitment.offer.send", "o", CATALOG)
    assert anyone.filter == And((Eq("org_id", "org-a"),))


def test_z5_plan_filter_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="filter field 'id'"):
        Eq("id", "x")  # type: ignore[arg-type]


def test_z6_platform_keys_only_for_the_platform_root() -> None:
    resource = _res(org="org-b")
    tenant = _user("platform.org.suspend:any")
    assert not decide(tenant, "platform.org.suspend", resource, CATALOG).allowed
    root = _user(root=True)
    decision = decide(root, "platform.org.suspend", resource, CATALOG)
    assert decision.allowed
    assert decision.reason == "platform root holds platform.org.suspend"
    plan = plan_list(root, "platform.org.suspend", "org", CATALOG)
    assert plan.kind is PlanKind.ALWAYS_ALLOWED


def test_z6_platform_root_gets_no_tenant_key_for_free() -> None:
    root = _user(root=True)
    assert not decide(root, "recruitment.offer.send", _res(owner="u1"), CATALOG).allowed


def _ai(user: Subject, narrowing: frozenset[str] | None) -> Subject:
    return Subject(
        ActorType.AI,
        user.actor_id,
        user.org_id,
        user.team_ids,
        user.grants,
        narrowing,
        user.is_platform_root,
    )


def test_i2_ai_narrowing_restricts_further() -> None:
    user = _user("recruitment.offer.send:any", "recruitment.candidate.read:any")
    ai = _ai(user, frozenset({"recruitment.candidate.read"}))
    assert decide(ai, "recruitment.candidate.read", _res(), CATALOG).allowed
    decision = decide(ai, "recruitment.offer.send", _res(), CATALOG)
    assert not decision.allowed
    assert "outside the AI session's narrowing" in decision.reason
    assert decide(_ai(user, None), "recruitment.offer.send", _res(), CATALOG).allowed


def test_i2_narrowing_never_adds_what_the_user_lacks() -> None:
    ai = _ai(_user(), frozenset({"recruitment.offer.send"}))
    assert not decide(ai, "recruitment.offer.send", _res(), CATALOG).allowed


@pytest.mark.parametrize("key", ["authz.role.assign", "iam.user.impersonate"])
def test_i2_ai_cannot_escalate_or_impersonate(key: str) -> None:
    user = _user(f"{key}:any")
    assert decide(user, key, _res(), CATALOG).allowed
    ai = _ai(user, None)
    assert not decide(ai, key, _res(), CATALOG).allowed
    assert plan_list(ai, key, "x", CATALOG).kind is PlanKind.ALWAYS_DENIED


@FAST
@given(subject=subject_st, resource=resource_st, data=st.data())
def test_z1_tenancy_nothing_in_one_org_reaches_another(
    subject: Subject, resource: Resource, data: st.DataObject
) -> None:
    key = data.draw(_key_for(subject))
    if resource.org_id == subject.org_id or (
        subject.is_platform_root and key.startswith("platform.")
    ):
        return
    assert not decide(subject, key, resource, CATALOG).allowed


@settings(max_examples=300, deadline=None)
@given(subject=subject_st, data=st.data(), rows=st.lists(resource_st, max_size=25))
def test_z5_plan_selects_exactly_the_rows_decide_allows(
    subject: Subject, data: st.DataObject, rows: list[Resource]
) -> None:
    key = data.draw(_key_for(subject))
    plan = plan_list(subject, key, "thing", CATALOG)
    assert (plan.filter is not None) is (plan.kind is PlanKind.CONDITIONAL)
    for row in rows:
        assert matches(plan, row) == decide(subject, key, row, CATALOG).allowed, (plan, row)


@FAST
@given(subject=subject_st, resource=resource_st, data=st.data())
def test_i2_ai_never_gets_more_than_its_user(
    subject: Subject, resource: Resource, data: st.DataObject
) -> None:
    key = data.draw(_key_for(subject))
    user = Subject(
        ActorType.USER,
        subject.actor_id,
        subject.org_id,
        subject.team_ids,
        subject.grants,
        None,
        subject.is_platform_root,
    )
    if decide(_ai(user, subject.ai_narrowing), key, resource, CATALOG).allowed:
        assert decide(user, key, resource, CATALOG).allowed
        assert subject.ai_narrowing is None or key in subject.ai_narrowing
