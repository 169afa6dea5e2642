"""Audit's declared permissions match its RPCs' method options (Z2)."""

from __future__ import annotations

import re

import pytest

from helios.audit.domain.permissions import AUDIT_PERMISSIONS, PLATFORM_LIST
from helios.kernel.permission_catalog import required_permissions
from helios.proto.audit.v1 import audit_pb2
from helios.proto.authz.v1 import authz_pb2

pytestmark = pytest.mark.unit

_SERVICE = audit_pb2.DESCRIPTOR.services_by_name["AuditService"]
_KEY = re.compile(r"[a-z][a-zA-Z0-9]*\.[a-z][a-zA-Z0-9]*\.[a-z][a-zA-Z0-9]*")


def test_z2_declared_keys_are_the_keys_the_rpcs_require() -> None:
    declared = [p.key for p in AUDIT_PERMISSIONS]
    assert len(set(declared)) == len(declared)
    assert set(declared) == set(required_permissions(_SERVICE)) | {PLATFORM_LIST}
    assert all(_KEY.fullmatch(key) for key in declared), declared


def test_z2_declared_dangerous_flags_match_the_rpc_options() -> None:
    required = required_permissions(_SERVICE)
    for permission in AUDIT_PERMISSIONS:
        assert permission.dangerous == required.get(permission.key, False), permission.key


def test_z2_descriptions_are_one_line_and_scopes_are_declared() -> None:
    for permission in AUDIT_PERMISSIONS:
        text = permission.description
        assert text, permission.key
        assert text.strip() == text, permission.key
        assert "\n" not in text, permission.key
        scopes = list(permission.allowed_scopes)
        assert scopes, permission.key
        assert len(set(scopes)) == len(scopes), permission.key
        assert authz_pb2.SCOPE_UNSPECIFIED not in scopes, permission.key
