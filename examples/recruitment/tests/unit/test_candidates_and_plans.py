"""The example store (deterministic candidates per org and caller, offers in memory) and the list
plans that decide which candidates a caller sees (fail closed)."""

from __future__ import annotations

import pytest

from helios.proto.authz.v1 import authz_pb2
from helios.recruitment_example.authz_gate import plan_reaches
from helios.recruitment_example.candidates import Candidate, CandidateBook, OfferBook

pytestmark = pytest.mark.unit


def test_i5_candidates_are_derived_from_the_org_and_the_callers() -> None:
    book = CandidateBook()
    first = book.of_org("org-1", "alice")
    assert len(first) == 5
    assert sorted(c.owner_id for c in first) == ["", "", "", "alice", "alice"]
    assert first == sorted(first, key=lambda c: (c.name, c.candidate_id))
    assert CandidateBook().of_org("org-1", "alice") == first  # the same on every start
    with_bob = book.of_org("org-1", "bob")
    assert set(first) < set(with_bob)
    assert len(with_bob) == 7
    assert not set(book.of_org("org-2", "alice")) & set(with_bob)  # orgs share nothing
    mine = next(c for c in first if c.owner_id == "alice")
    assert book.find("org-1", "carol", mine.candidate_id) == mine
    assert book.find("org-2", "alice", mine.candidate_id) is None


def test_i5_offers_are_kept_per_org_in_order() -> None:
    candidate = CandidateBook().of_org("org-1", "alice")[0]
    offers = OfferBook()
    sent = [offers.send(candidate, salary, "EUR", "alice") for salary in (1, 2)]
    assert offers.sent("org-1") == sent
    assert [o.salary for o in sent] == [1, 2]
    assert offers.sent("org-2") == []


def _leaf(field: int, *values: str) -> authz_pb2.FilterNode:
    return authz_pb2.FilterNode(
        leaf=authz_pb2.FilterLeaf(field=field, values=values)  # type: ignore[arg-type]
    )


OWNED = Candidate("c-1", "org-1", "Ada Lovelace", "alice", "")
UNOWNED = Candidate("c-2", "org-1", "Alan Turing", "", "")


def test_z5_plans_reach_exactly_what_they_describe() -> None:
    own = authz_pb2.PlanListResponse(
        kind=authz_pb2.PLAN_KIND_CONDITIONAL,
        filter=authz_pb2.FilterNode(
            all_of=authz_pb2.FilterNodeList(
                nodes=[
                    _leaf(authz_pb2.FILTER_FIELD_ORG_ID, "org-1"),
                    authz_pb2.FilterNode(
                        any_of=authz_pb2.FilterNodeList(
                            nodes=[
                                _leaf(authz_pb2.FILTER_FIELD_OWNER_ID, "alice"),
                                _leaf(authz_pb2.FILTER_FIELD_TEAM_ID, "team-1"),
                            ]
                        )
                    ),
                ]
            )
        ),
    )
    assert plan_reaches(own, OWNED)
    assert not plan_reaches(own, UNOWNED)
    anyone = authz_pb2.PlanListResponse(kind=authz_pb2.PLAN_KIND_ALWAYS_ALLOWED)
    assert plan_reaches(anyone, UNOWNED)


@pytest.mark.parametrize(
    "plan",
    [
        authz_pb2.PlanListResponse(kind=authz_pb2.PLAN_KIND_ALWAYS_DENIED),
        authz_pb2.PlanListResponse(kind=authz_pb2.PLAN_KIND_UNSPECIFIED),
        authz_pb2.PlanListResponse(kind=authz_pb2.PLAN_KIND_CONDITIONAL),
        authz_pb2.PlanListResponse(
            kind=authz_pb2.PLAN_KIND_CONDITIONAL, filter=authz_pb2.FilterNode()
        ),
        authz_pb2.PlanListResponse(
            kind=authz_pb2.PLAN_KIND_CONDITIONAL,
            filter=_leaf(authz_pb2.FILTER_FIELD_UNSPECIFIED, "alice"),
        ),
        authz_pb2.PlanListResponse(
            kind=authz_pb2.PLAN_KIND_CONDITIONAL, filter=_leaf(authz_pb2.FILTER_FIELD_OWNER_ID, "")
        ),
    ],
)
def test_z5_denied_unknown_or_empty_plans_reach_nothing(plan: authz_pb2.PlanListResponse) -> None:
    assert not plan_reaches(plan, OWNED)
    assert not plan_reaches(plan, UNOWNED)
