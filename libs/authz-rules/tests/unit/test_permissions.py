"""Permission keys, grants, the merged catalog and the tenant-grant rule (Z1, Z2, Z6)."""

from __future__ import annotations

import pytest

from helios.authz_rules.permissions import (
    Catalog,
    Grant,
    PermissionKey,
    PermissionSpec,
    Scope,
    is_platform,
    parse_grant,
    parse_key,
    permission,
    validate_tenant_grants,
)
from helios.kernel.errors import AlreadyExistsError, InvalidArgumentError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "raw", ["iam.user.revokeSessions", "recruitment.offer.send", "a.b.c", "crm2.account.merge"]
)
def test_z1_valid_keys_round_trip(raw: str) -> None:
    assert str(parse_key(raw)) == raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "permission key is empty; expected <module>.<entity>.<verb>"),
        ("iam.user", "must have three dot-separated parts <module>.<entity>.<verb>, got 2"),
        ("iam.user.read.all", "got 4"),
        ("Iam.user.read", "module 'Iam' must start with a lowercase letter"),
        ("iam..read", "entity '' must start with a lowercase letter"),
        ("iam.user.re-ad", "verb 're-ad' must start with a lowercase letter"),
        ("iam.user.2fa", "verb '2fa' must start"),
        ("iam.us er.read", "entity 'us er'"),
        ("a." * 100 + "b", "longer than 200 characters"),
    ],
)
def test_z1_malformed_key_raises_clear_message(raw: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match="permission key") as caught:
        parse_key(raw)
    assert message in caught.value.message
    assert caught.value.field == "permission"


def test_z1_key_constructor_validates_parts() -> None:
    with pytest.raises(InvalidArgumentError, match="module 'IAM'"):
        PermissionKey("IAM", "user", "read")


def test_z5_grant_parses_scope_suffix() -> None:
    grant = parse_grant("recruitment.offer.send:team")
    assert grant == Grant(PermissionKey("recruitment", "offer", "send"), Scope.TEAM)
    assert str(grant) == "recruitment.offer.send:team"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("recruitment.offer.send", "the scope is missing"),
        ("recruitment.offer.send:all", "scope 'all' must be one of own, team, any"),
        ("recruitment.offer.send:TEAM", "scope 'TEAM'"),
        ("recruitment.offer:own", "three dot-separated parts"),
    ],
)
def test_z5_malformed_grant_raises_clear_message(raw: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_grant(raw)
    assert message in caught.value.message


def test_z5_broader_scope_implies_narrower() -> None:
    assert Scope.ANY.implies(Scope.TEAM)
    assert Scope.ANY.implies(Scope.OWN)
    assert Scope.TEAM.implies(Scope.OWN)
    assert not Scope.TEAM.implies(Scope.ANY)
    assert not Scope.OWN.implies(Scope.TEAM)


def test_z6_platform_keys_recognised() -> None:
    assert is_platform("platform.org.suspend")
    assert not is_platform("saas.organization.delete")


def test_z2_catalog_registration_is_idempotent() -> None:
    spec = permission("recruitment.offer.send", "Send an offer to a candidate.", dangerous=True)
    catalog = Catalog()
    assert catalog.register(spec) is True
    assert (
        catalog.register(
            permission("recruitment.offer.send", "Send an offer to a candidate.", dangerous=True)
        )
        is False
    )
    assert len(catalog) == 1
    assert catalog.get("recruitment.offer.send") == spec
    assert catalog.get("recruitment.offer.withdraw") is None
    assert spec.key in catalog


@pytest.mark.parametrize(
    "conflict",
    [
        permission("recruitment.offer.send", "Another description.", dangerous=True),
        permission("recruitment.offer.send", "Send an offer to a candidate.", dangerous=False),
        permission(
            "recruitment.offer.send",
            "Send an offer to a candidate.",
            dangerous=True,
            scopes=[Scope.OWN],
        ),
    ],
)
def test_z2_conflicting_registration_raises(conflict: PermissionSpec) -> None:
    catalog = Catalog(
        [permission("recruitment.offer.send", "Send an offer to a candidate.", dangerous=True)]
    )
    with pytest.raises(AlreadyExistsError, match="already registered with a different"):
        catalog.register(conflict)


def test_z2_catalog_iterates_sorted_by_key() -> None:
    catalog = Catalog([permission("b.x.read", "B."), permission("a.x.read", "A.")])
    assert [str(s.key) for s in catalog] == ["a.x.read", "b.x.read"]


@pytest.mark.parametrize("description", ["", "   ", "two\nlines"])
def test_z2_description_must_be_one_line(description: str) -> None:
    with pytest.raises(InvalidArgumentError, match="one non-empty line"):
        permission("a.b.c", description)


def test_z2_spec_needs_a_scope() -> None:
    with pytest.raises(InvalidArgumentError, match="at least one scope"):
        permission("a.b.c", "Something.", scopes=[])


def test_z6_platform_grant_refused_in_tenant_role() -> None:
    grants = {parse_grant("crm.account.read:any"), parse_grant("platform.org.suspend:any")}
    with pytest.raises(InvalidArgumentError, match="platform root role only") as caught:
        validate_tenant_grants(grants)
    assert "platform.org.suspend:any" in caught.value.message


def test_z6_tenant_grants_checked_against_catalog() -> None:
    catalog = Catalog([permission("hr.note.create", "Write a note.", scopes=[Scope.OWN])])
    validate_tenant_grants({parse_grant("hr.note.create:own")}, catalog)
    with pytest.raises(InvalidArgumentError, match="allows only the scopes own"):
        validate_tenant_grants({parse_grant("hr.note.create:any")}, catalog)
    with pytest.raises(InvalidArgumentError, match="not in the catalog"):
        validate_tenant_grants({parse_grant("hr.note.delete:own")}, catalog)


def test_z5_grants_of_one_key_at_several_scopes_sort_narrowest_first() -> None:
    wide, narrow = parse_grant("x.doc.read:any"), parse_grant("x.doc.read:own")
    assert sorted({wide, narrow}) == [narrow, wide]
