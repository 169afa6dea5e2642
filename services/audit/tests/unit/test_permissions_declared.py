"""Audit's declared permissions match its RPCs' method options (Z2)."""

from __future__ import annotations

import pytest

from helios.audit.domain.permissions import AUDIT_PERMISSIONS, PLATFORM_LIST
from helios.kernel.testing.declared_permissions import assert_declarations_match
from helios.proto.audit.v1 import audit_pb2

pytestmark = pytest.mark.unit


def test_z2_declarations_match_the_rpcs() -> None:
    assert_declarations_match(
        audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
        AUDIT_PERMISSIONS,
        checked_inside={PLATFORM_LIST},
    )
