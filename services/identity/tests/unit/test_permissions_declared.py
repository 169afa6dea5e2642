"""Identity's declared permissions match its RPCs' method options (Z2)."""

from __future__ import annotations

import pytest

from helios.identity.domain.permissions import IDENTITY_PERMISSIONS
from helios.kernel.testing.declared_permissions import assert_declarations_match
from helios.proto.identity.v1 import identity_pb2

pytestmark = pytest.mark.unit


def test_z2_declarations_match_the_rpcs() -> None:
    assert_declarations_match(
        identity_pb2.DESCRIPTOR.services_by_name["IdentityService"], IDENTITY_PERMISSIONS
    )
