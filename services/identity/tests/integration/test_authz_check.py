"""Identity's authz adapter against a real authz: a grant allows; a missing grant, and a
question authz refuses (a principal in no org), deny rather than fail (Z1)."""

from __future__ import annotations

import uuid

from helios.proto.common.v1 import principal_pb2

from .conftest import AuthzServer


def _user(org_id: str, user_id: str | None = None) -> principal_pb2.Principal:
    return principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER,
        actor_id=user_id or str(uuid.uuid4()),
        org_id=org_id,
        session_id=str(uuid.uuid4()),
    )


async def test_z1_owner_allowed_stranger_and_org_less_user_denied(authz: AuthzServer) -> None:
    """Z1: the org's Owner holds `iam.member.add`; another user of no role in it does not; a
    user in no org gets a plain deny (authz refuses the question), not an outage."""
    org_id, owner_id = str(uuid.uuid4()), str(uuid.uuid4())
    await authz.seed_org(org_id, owner_id)
    assert await authz.authorizer.allowed(_user(org_id, owner_id), "iam.member.add") is True
    assert await authz.authorizer.allowed(_user(org_id), "iam.member.add") is False
    assert await authz.authorizer.allowed(_user(""), "iam.member.add") is False
