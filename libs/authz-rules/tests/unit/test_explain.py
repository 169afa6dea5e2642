"""explain(): the evaluation path agrees with decide() and names the deciding grant (Z1, Z5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios.authz_rules.evaluator import ActorType, Resource, Subject, decide
from helios.authz_rules.explain import StepKind, explain
from helios.authz_rules.permissions import Grant, Scope, parse_grant

from .test_evaluator import CATALOG, FAST, key_st, resource_st, subject_st

pytestmark = pytest.mark.unit


@FAST
@given(subject=subject_st, key=key_st, resource=resource_st)
def test_z1_explain_agrees_with_decide_and_ends_with_the_dangerous_flag(
    subject: Subject, key: str, resource: Resource
) -> None:
    decision, steps = explain(subject, key, resource, CATALOG)
    assert decision == decide(subject, key, resource, CATALOG)
    if CATALOG.get(key) is None:
        assert [s.kind for s in steps] == [StepKind.CATALOG]
        assert not steps[0].passed
        return
    assert steps[-1].kind is StepKind.DANGEROUS
    path = steps[:-1]
    assert all(s.passed for s in path[:-1] if s.kind is not StepKind.SCOPE)
    if decision.allowed:
        assert path[-1].passed
        if decision.grant is not None and path[-1].kind is StepKind.SCOPE:
            assert path[-1].grant == decision.grant
    else:
        assert not path[-1].passed


@given(st.sampled_from(["own", "team"]))
def test_z5_explain_names_each_examined_grant_and_the_scope_that_reached(scope: str) -> None:
    subject = Subject(
        ActorType.USER,
        "u1",
        "org-a",
        team_ids=frozenset({"t1"}),
        grants=frozenset({parse_grant(f"recruitment.candidate.delete:{scope}")}),
    )
    resource = Resource("candidate", "c1", "org-a", owner_id="u2", team_id="t1")
    decision, steps = explain(subject, "recruitment.candidate.delete", resource, CATALOG)
    kinds = [s.kind for s in steps]
    assert kinds == [
        StepKind.CATALOG,
        StepKind.TENANCY,
        StepKind.GRANT,
        StepKind.SCOPE,
        StepKind.DANGEROUS,
    ]
    grant = Grant(parse_grant(f"recruitment.candidate.delete:{scope}").key, Scope(scope))
    assert steps[2].grant == grant
    assert steps[3].passed is decision.allowed is (scope == "team")
    assert "candidate/c1" in steps[3].detail


def test_d2_explain_reports_the_orgs_dangerous_marks() -> None:
    subject = Subject(ActorType.USER, "u1", "org-a")
    resource = Resource("candidate", "c1", "org-a")
    _, plain = explain(subject, "recruitment.candidate.read", resource, CATALOG)
    _, marked = explain(
        subject, "recruitment.candidate.read", resource, CATALOG, frozenset({"recruitment.*.read"})
    )
    assert "not dangerous" in plain[-1].detail
    assert marked[-1].detail.endswith("is dangerous in this org")


def test_z6_explain_platform_key_for_a_tenant_fails_at_the_reservation() -> None:
    subject = Subject(ActorType.USER, "u1", "org-a")
    resource = Resource("org", "o1", "org-b")
    decision, steps = explain(subject, "platform.org.suspend", resource, CATALOG)
    assert not decision.allowed
    assert [s.kind for s in steps] == [
        StepKind.CATALOG,
        StepKind.PLATFORM_RESERVED,
        StepKind.DANGEROUS,
    ]
    assert not steps[1].passed
