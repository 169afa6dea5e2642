"""The AI broker's declared permissions match its RPCs' method options (Z2)."""

from __future__ import annotations

import pytest

from helios.ai_broker.domain.permissions import AI_BROKER_PERMISSIONS
from helios.kernel.testing.declared_permissions import assert_declarations_match
from helios.proto.ai_broker.v1 import ai_broker_pb2

pytestmark = pytest.mark.unit


def test_z2_declarations_match_the_rpcs() -> None:
    assert_declarations_match(
        ai_broker_pb2.DESCRIPTOR.services_by_name["AiBrokerService"], AI_BROKER_PERMISSIONS
    )
