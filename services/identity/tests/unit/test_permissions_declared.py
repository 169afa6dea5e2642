"""Identity's declared permissions match its RPCs' method options (Z2)."""

from __future__ import annotations

import re

import pytest

from helios.identity.domain.permissions import IDENTITY_PERMISSIONS
from helios.kernel.permission_catalog import required_permissions
from helios.proto.authz.v1 import authz_pb2
from helios.proto.identity.v1 import identity_pb2
from helios.proto.options.v1 import options_pb2

pytestmark = pytest.mark.unit

_SERVICE = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"]
_KEY = re.compile(r"[a-z][a-zA-Z0-9]*\.[a-z][a-zA-Z0-9]*\.[a-z][a-zA-Z0-9]*")


def test_z2_declared_keys_are_the_keys_the_rpcs_require() -> None:
    declared = [p.key for p in IDENTITY_PERMISSIONS]
    assert len(set(declared)) == len(declared)
    assert set(declared) == set(required_permissions(_SERVICE))
    assert all(_KEY.fullmatch(key) for key in declared), declared


def test_z2_declared_dangerous_flags_match_the_rpc_options() -> None:
    required = required_permissions(_SERVICE)
    for permission in IDENTITY_PERMISSIONS:
        assert permission.dangerous == required[permission.key], permission.key


def test_z2_descriptions_are_one_line_and_scopes_are_declared() -> None:
    for permission in IDENTITY_PERMISSIONS:
        text = permission.description
        assert text, permission.key
        assert text.strip() == text, permission.key
        assert "\n" not in text, permission.key
        scopes = list(permission.allowed_scopes)
        assert scopes, permission.key
        assert len(set(scopes)) == len(scopes), permission.key
        assert authz_pb2.SCOPE_UNSPECIFIED not in scopes, permission.key


def test_z2_a_scope_an_rpc_requires_is_allowed_by_its_declaration() -> None:
    # GetCurrentUser requires `identity.user.read:own`: a grant at `own` must be possible.
    suffixes = {
        "own": authz_pb2.SCOPE_OWN,
        "team": authz_pb2.SCOPE_TEAM,
        "any": authz_pb2.SCOPE_ANY,
    }
    declared = {p.key: set(p.allowed_scopes) for p in IDENTITY_PERMISSIONS}
    for method in _SERVICE.methods:
        option = method.GetOptions().Extensions[options_pb2.authz]
        key, _, suffix = option.permission.partition(":")
        if suffix:
            assert suffixes[suffix] in declared[key], method.name
