"""Keyvault's declared permissions match its RPCs' method options (Z2)."""

from __future__ import annotations

import pytest

from helios.kernel.testing.declared_permissions import assert_declarations_match
from helios.keyvault.domain.permissions import KEYVAULT_PERMISSIONS
from helios.proto.keyvault.v1 import keyvault_pb2

pytestmark = pytest.mark.unit


def test_z2_declarations_match_the_rpcs() -> None:
    assert_declarations_match(
        keyvault_pb2.DESCRIPTOR.services_by_name["KeyvaultService"], KEYVAULT_PERMISSIONS
    )
