"""Authz's declared permissions match its RPCs, and every RPC's key is well formed (Z1, Z2)."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FileDescriptor

from helios.authz.domain.own_permissions import AUTHZ_PERMISSIONS
from helios.authz_rules.permissions import parse_key
from helios.kernel.permission_catalog import required_permissions
from helios.proto.ai_broker.v1 import ai_broker_pb2
from helios.proto.audit.v1 import audit_pb2
from helios.proto.authz.v1 import authz_pb2
from helios.proto.identity.v1 import identity_pb2
from helios.proto.keyvault.v1 import keyvault_pb2
from helios.proto.options.v1 import options_pb2

pytestmark = pytest.mark.unit


def _options(file: FileDescriptor) -> dict[str, options_pb2.MethodAuthz]:
    found = {}
    for service in file.services_by_name.values():
        for method in service.methods:
            found[method.name] = method.GetOptions().Extensions[options_pb2.authz]
    return found


def test_z2_every_authz_rpc_permission_is_declared_with_its_dangerous_flag() -> None:
    declared = {str(s.key): s for s in AUTHZ_PERMISSIONS}
    required = required_permissions(authz_pb2.DESCRIPTOR.services_by_name["AuthzService"])
    assert set(required) == set(declared)
    for key, dangerous in required.items():
        assert declared[key].dangerous is dangerous, key


@pytest.mark.parametrize(
    "file",
    [
        identity_pb2.DESCRIPTOR,
        authz_pb2.DESCRIPTOR,
        audit_pb2.DESCRIPTOR,
        keyvault_pb2.DESCRIPTOR,
        ai_broker_pb2.DESCRIPTOR,
    ],
    ids=lambda f: f.name,
)
def test_z1_every_rpc_names_a_well_formed_permission_or_is_public(file: FileDescriptor) -> None:
    for name, option in _options(file).items():
        if option.public:
            assert not option.permission, name
            continue
        key = option.permission.split(":")[0]
        assert str(parse_key(key)) == key, name
