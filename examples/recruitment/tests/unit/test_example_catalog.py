"""The example service's declarations: permissions matching its RPC options (Z2), and actions
aimed at the RPCs that require their permissions (I5)."""

from __future__ import annotations

import pytest

from helios.kernel.testing.declared_permissions import assert_declarations_match
from helios.proto.options.v1 import options_pb2
from helios.proto.recruitment.v1 import recruitment_pb2
from helios.recruitment_example.catalog import RECRUITMENT_ACTIONS, RECRUITMENT_PERMISSIONS

pytestmark = pytest.mark.unit

SERVICE = recruitment_pb2.DESCRIPTOR.services_by_name["RecruitmentService"]


def test_z2_declarations_match_the_rpcs() -> None:
    assert_declarations_match(SERVICE, RECRUITMENT_PERMISSIONS)


def test_i5_each_action_targets_the_rpc_requiring_its_permission() -> None:
    methods = {f"/{SERVICE.full_name}/{m.name}": m for m in SERVICE.methods}
    assert [a.name for a in RECRUITMENT_ACTIONS] == [
        "recruitment.candidate.list",
        "recruitment.offer.send",
    ]
    for action in RECRUITMENT_ACTIONS:
        option = methods[action.target_method].GetOptions().Extensions[options_pb2.authz]
        assert option.permission == action.permission == action.name
        assert action.ai_allowed
