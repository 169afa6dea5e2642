"""Exhaustive blueprint matrix: every (role x permission x scope) not listed is denied (Z3, Z5)."""

from __future__ import annotations

import itertools

import pytest

from helios.authz.domain.blueprints import Blueprint, blueprint_grants
from helios.authz_rules.evaluator import ActorType, Resource, Subject, decide
from helios.authz_rules.permissions import Catalog, Grant, Scope, parse_key, permission

pytestmark = pytest.mark.unit

ANY, TEAM, OWN = Scope.ANY, Scope.TEAM, Scope.OWN
ALL = (OWN, TEAM, ANY)

CATALOG = Catalog(
    [
        permission("recruitment.offer.send", "Send an offer.", scopes=ALL),
        permission("recruitment.candidate.read", "Read a candidate.", scopes=ALL),
        permission("recruitment.candidate.delete", "Delete a candidate.", scopes=(OWN, TEAM)),
        permission("crm.account.merge", "Merge two accounts.", scopes=(ANY,)),
        permission("crm.contact.export", "Export contacts.", dangerous=True, scopes=ALL),
        permission("support.ticket.list", "List tickets.", scopes=ALL),
        permission("hr.note.create", "Write a note.", scopes=(OWN,)),
        permission("iam.user.read", "Read a user.", scopes=(OWN, ANY)),
        permission("iam.user.revokeSessions", "Sign a user out everywhere.", scopes=(ANY,)),
        permission("authz.role.assign", "Assign a role.", scopes=(ANY,)),
        permission("saas.organization.delete", "Delete the organization.", scopes=(ANY,)),
        permission("platform.org.suspend", "Suspend an org.", scopes=(ANY,)),
    ]
)

# The documented rule (blueprints.blueprint_grants) worked out by hand for CATALOG.
EXPECTED: dict[Blueprint, dict[str, Scope]] = {
    Blueprint.PLATFORM_ROOT: {},
    Blueprint.OWNER: {
        "recruitment.offer.send": ANY,
        "recruitment.candidate.read": ANY,
        "recruitment.candidate.delete": TEAM,
        "crm.account.merge": ANY,
        "crm.contact.export": ANY,
        "support.ticket.list": ANY,
        "hr.note.create": OWN,
        "iam.user.read": ANY,
        "iam.user.revokeSessions": ANY,
        "authz.role.assign": ANY,
        "saas.organization.delete": ANY,
    },
    Blueprint.ADMIN: {
        "recruitment.offer.send": ANY,
        "recruitment.candidate.read": ANY,
        "recruitment.candidate.delete": TEAM,
        "crm.account.merge": ANY,
        "crm.contact.export": ANY,
        "support.ticket.list": ANY,
        "hr.note.create": OWN,
        "iam.user.read": ANY,
        "iam.user.revokeSessions": ANY,
        "authz.role.assign": ANY,
    },
    Blueprint.MANAGER: {
        "recruitment.offer.send": TEAM,
        "recruitment.candidate.read": TEAM,
        "recruitment.candidate.delete": TEAM,
        "crm.contact.export": TEAM,
        "support.ticket.list": TEAM,
        "hr.note.create": OWN,
    },
    Blueprint.EMPLOYEE: {
        "recruitment.candidate.read": OWN,
        "support.ticket.list": OWN,
        "hr.note.create": OWN,
    },
    Blueprint.CLIENT: {
        "recruitment.candidate.read": OWN,
        "support.ticket.list": OWN,
    },
}

ME, COLLEAGUE, ORG, MY_TEAM, OTHER_TEAM = "u-me", "u-colleague", "org-a", "t-mine", "t-other"

# One resource per tier: reachable with OWN, with TEAM (not OWN), with ANY only.
TIER_RESOURCE = {
    OWN: Resource("thing", "r-own", ORG, owner_id=ME, team_id=OTHER_TEAM),
    TEAM: Resource("thing", "r-team", ORG, owner_id=COLLEAGUE, team_id=MY_TEAM),
    ANY: Resource("thing", "r-any", ORG, owner_id=COLLEAGUE, team_id=OTHER_TEAM),
}


def _subject(blueprint: Blueprint) -> Subject:
    return Subject(
        ActorType.USER,
        ME,
        ORG,
        team_ids=frozenset({MY_TEAM}),
        grants=blueprint_grants(blueprint, CATALOG),
    )


@pytest.mark.parametrize("blueprint", list(Blueprint))
def test_z3_blueprint_grants_are_exactly_the_documented_ones(blueprint: Blueprint) -> None:
    expected = {Grant(parse_key(k), s) for k, s in EXPECTED[blueprint].items()}
    assert blueprint_grants(blueprint, CATALOG) == expected


@pytest.mark.parametrize(
    ("blueprint", "key", "tier"),
    list(itertools.product(list(Blueprint), [str(s.key) for s in CATALOG], ALL)),
)
def test_z3_z5_blueprint_matrix(blueprint: Blueprint, key: str, tier: Scope) -> None:
    held = EXPECTED[blueprint].get(key)
    allowed = held is not None and held.implies(tier)
    decision = decide(_subject(blueprint), key, TIER_RESOURCE[tier], CATALOG)
    assert decision.allowed is allowed, decision.reason
    if allowed:
        assert decision.grant == Grant(parse_key(key), held)  # type: ignore[arg-type]
    else:
        assert decision.grant is None


@pytest.mark.parametrize("blueprint", list(Blueprint))
def test_z6_no_blueprint_holds_a_platform_key(blueprint: Blueprint) -> None:
    assert all(g.key.module != "platform" for g in blueprint_grants(blueprint, CATALOG))
