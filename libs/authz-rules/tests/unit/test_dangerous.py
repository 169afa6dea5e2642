"""Dangerous actions: the D1 default classes and per-org additions (D1, D2)."""

from __future__ import annotations

import pytest

from helios.authz_rules.dangerous import dangerous_class, is_dangerous, parse_org_extra
from helios.kernel.errors import InvalidArgumentError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("key", "cls"),
    [
        ("email.outbound.send", "outbound e-mail"),
        ("support.reply.send", "support reply"),
        ("support.ticket.reply", "support reply"),
        ("recruitment.offer.send", "offer sent to a candidate"),
        ("crm.contact.delete", "deletion"),
        ("payroll.run.finalize", "payroll finalize, disbursement"),
        ("payroll.payment.disburse", "payroll finalize, disbursement"),
        ("crm.account.merge", "account merge"),
        ("authz.permission.grant", "permission grant"),
        ("authz.role.assign", "role assignment"),
        ("saas.organization.delete", "deletion"),
        ("iam.user.revokeSessions", "session revocation"),
    ],
)
def test_d1_default_dangerous_classes(key: str, cls: str) -> None:
    found = dangerous_class(key)
    assert found is not None
    assert found.name == cls
    assert is_dangerous(key, False, frozenset())


@pytest.mark.parametrize(
    "key",
    [
        "email.outbound.read",
        "recruitment.offer.create",
        "crm.contact.update",
        "payroll.run.read",
        "support.ticket.list",
        "iam.user.read",
        "crm.account.read",
    ],
)
def test_d1_ordinary_actions_are_not_dangerous(key: str) -> None:
    assert dangerous_class(key) is None
    assert not is_dangerous(key, False, frozenset())


def test_d1_spec_flag_marks_dangerous() -> None:
    assert is_dangerous("crm.contact.export", True, frozenset())


def test_d2_org_marks_more_actions_dangerous() -> None:
    extra = parse_org_extra(["crm.contact.export"])
    assert is_dangerous("crm.contact.export", False, extra)
    assert not is_dangerous("crm.contact.read", False, extra)
    assert not is_dangerous("crm.contact.export", False, frozenset())


def test_d2_org_extra_rejects_malformed_keys() -> None:
    with pytest.raises(InvalidArgumentError, match="three dot-separated parts"):
        parse_org_extra(["crm.contact"])


def test_d1_malformed_key_raises() -> None:
    with pytest.raises(InvalidArgumentError):
        is_dangerous("crm..delete", False, frozenset())


def test_d2_org_patterns_with_wildcard_parts_match() -> None:
    extra = parse_org_extra(["recruitment.*.send", "crm.contact.export"])
    assert extra == frozenset({"recruitment.*.send", "crm.contact.export"})
    assert is_dangerous("recruitment.letter.send", False, extra)
    assert not is_dangerous("recruitment.letter.read", False, extra)


@pytest.mark.parametrize("bad", ["*.*.*", "Crm.*.send", "crm.*", "crm.-.send"])
def test_d2_org_patterns_refuse_everything_and_malformed(bad: str) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_org_extra([bad])
