"""Test helper (Z2): a service's declared permissions match what its RPCs require."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from google.protobuf.descriptor import ServiceDescriptor

from helios.kernel.permission_catalog import required_permissions
from helios.proto.authz.v1 import authz_pb2
from helios.proto.options.v1 import options_pb2

__all__ = ["assert_declarations_match"]

_KEY = re.compile(r"[a-z][a-zA-Z0-9]*\.[a-z][a-zA-Z0-9]*\.[a-z][a-zA-Z0-9]*")
_SUFFIXES = {"own": authz_pb2.SCOPE_OWN, "team": authz_pb2.SCOPE_TEAM, "any": authz_pb2.SCOPE_ANY}


def assert_declarations_match(
    service: ServiceDescriptor,
    declared: Sequence[authz_pb2.PermissionDefinition],
    *,
    checked_inside: Collection[str] = (),
) -> None:
    """Assert that `declared` is exactly the keys `service`'s RPCs require (plus
    `checked_inside`: keys handlers check themselves), well formed and unique, with the RPC
    options' dangerous flags, one-line descriptions, valid distinct scopes, and every scope an
    RPC requires (`identity.user.read:own`) allowed."""
    keys = [p.key for p in declared]
    required = required_permissions(service)
    assert len(set(keys)) == len(keys), f"declared twice: {keys}"
    assert set(keys) == set(required) | set(checked_inside), sorted(set(keys) ^ set(required))
    by_key = {p.key: p for p in declared}
    for permission in declared:
        key = permission.key
        assert _KEY.fullmatch(key), key
        assert permission.dangerous == required.get(key, permission.dangerous), key
        text = permission.description
        assert text, key
        assert text.strip() == text, key
        assert "\n" not in text, key
        scopes = list(permission.allowed_scopes)
        assert scopes, key
        assert len(set(scopes)) == len(scopes), key
        assert authz_pb2.SCOPE_UNSPECIFIED not in scopes, key
    for method in service.methods:
        option = method.GetOptions().Extensions[options_pb2.authz]
        key, _, suffix = option.permission.partition(":")
        if suffix:
            assert _SUFFIXES[suffix] in by_key[key].allowed_scopes, method.name
