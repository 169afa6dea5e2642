"""The permission keys a service's RPCs require, read from their method options (Z2)."""

from __future__ import annotations

import uuid

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor

from helios.kernel.permission_catalog import required_permissions
from helios.proto.identity.v1 import identity_pb2
from helios.proto.options.v1 import options_pb2

pytestmark = pytest.mark.unit

_IDENTITY = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"]


def _service(*methods: tuple[str, str, bool, bool]) -> ServiceDescriptor:
    """A service built at run time whose methods are (name, permission, public, dangerous)."""
    package = f"helios_unit_test.catalog_{uuid.uuid4().hex[:8]}"
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"{package.replace('.', '/')}.proto",
        package=package,
        syntax="proto3",
        dependency=["helios/proto/options/v1/options.proto"],
    )
    proto.message_type.add(name="Nothing")
    service = proto.service.add(name="Probe")
    for name, permission, public, dangerous in methods:
        nothing = f".{package}.Nothing"
        method = service.method.add(name=name, input_type=nothing, output_type=nothing)
        option = method.options.Extensions[options_pb2.authz]
        option.permission, option.public, option.dangerous = permission, public, dangerous
    pool = descriptor_pool.Default()
    pool.AddSerializedFile(proto.SerializeToString())
    return pool.FindServiceByName(f"{package}.Probe")


def test_z2_scope_suffix_is_stripped_and_public_rpcs_are_skipped() -> None:
    required = required_permissions(_IDENTITY)
    assert required["identity.user.read"] is False  # GetCurrentUser: identity.user.read:own
    assert required["iam.user.impersonate"] is True
    assert all(":" not in key and key for key in required)
    public = [
        m.name for m in _IDENTITY.methods if m.GetOptions().Extensions[options_pb2.authz].public
    ]
    assert "SignUp" in public


def test_z2_one_key_required_by_several_rpcs_is_listed_once() -> None:
    service = _service(
        ("Read", "demo.item.read", False, False),
        ("ReadMine", "demo.item.read:own", False, False),
        ("Drop", "demo.item.delete:any", False, True),
        ("Open", "", True, False),
    )
    assert required_permissions(service) == {"demo.item.read": False, "demo.item.delete": True}


@pytest.mark.parametrize(
    "methods",
    [
        (("Read", "", False, False),),
        (("Read", "demo.item.read:all", False, False),),
        (("Read", "demo.item.read", False, False), ("Again", "demo.item.read", False, True)),
    ],
    ids=["no-permission", "unknown-suffix", "dangerous-disagrees"],
)
def test_z2_malformed_options_are_refused(methods: tuple[tuple[str, str, bool, bool], ...]) -> None:
    with pytest.raises(ValueError, match=r"Probe\.(Read|Again)"):
        required_permissions(_service(*methods))
