"""The platform root (Z6): only the root role of the platform org holds platform.* keys."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from helios.authz.domain.blueprints import Blueprint
from helios.kernel.context import CallContext
from helios.proto.authz.v1 import authz_pb2 as az

from .conftest import Authz

PLATFORM = "platform"
PLATFORM_KEYS = [
    az.PermissionDefinition(key="platform.org.create", description="Create an org."),
    az.PermissionDefinition(key="platform.org.suspend", description="Suspend an org."),
]
FRESH = az.Consistency(fully_consistent=True)


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


async def _check(authz: Authz, org: str, user: str, key: str, target_org: str) -> az.Decision:
    stub, metadata = authz.as_user(org, user)
    reply = await stub.Check(
        az.CheckRequest(
            permission=key,
            resource=az.Resource(type="identity.org", id=target_org, org_id=target_org),
            consistency=FRESH,
        ),
        metadata=metadata,
    )
    decision: az.Decision = reply.decision
    return decision


async def test_z6_seeded_root_holds_platform_keys_in_every_org_and_nobody_else(
    authz: Authz,
) -> None:
    await authz.as_service("identity").RegisterPermissions(
        az.RegisterPermissionsRequest(service="identity", permissions=PLATFORM_KEYS)
    )
    root, tenant_owner = str(uuid.uuid4()), str(uuid.uuid4())
    ctx = CallContext(caller="authz")
    assert await authz.services.seeding.seed_platform_root(ctx, PLATFORM, root)
    assert not await authz.services.seeding.seed_platform_root(ctx, PLATFORM, root)
    tenant = str(uuid.uuid4())
    await authz.seed_org(tenant, tenant_owner)

    allowed = await _check(authz, PLATFORM, root, "platform.org.suspend", tenant)
    assert allowed.allowed
    assert allowed.deny_reason == az.DENY_REASON_UNSPECIFIED
    for org, user in ((tenant, tenant_owner), (PLATFORM, str(uuid.uuid4())), (tenant, root)):
        denied = await _check(authz, org, user, "platform.org.suspend", tenant)
        assert not denied.allowed, (org, user)
        assert denied.deny_reason == az.DENY_REASON_PLATFORM_RESERVED


async def test_z6_users_cannot_assign_edit_or_delete_the_root_role(authz: Authz) -> None:
    root = str(uuid.uuid4())
    await authz.services.seeding.seed_platform_root(CallContext(caller="authz"), PLATFORM, root)
    owner_stub, owner_meta, _ = await authz.org_owner(PLATFORM)
    roles = await owner_stub.ListRoles(az.ListRolesRequest(), metadata=owner_meta)
    (root_role,) = [r for r in roles.roles if r.blueprint == az.ROLE_BLUEPRINT_PLATFORM_ROOT]
    assert Blueprint.PLATFORM_ROOT.value == "root"
    assert list(root_role.permissions) == []
    attempts = [
        lambda: owner_stub.AssignRole(
            az.AssignRoleRequest(role_id=root_role.role_id, user_id="mallory"), metadata=owner_meta
        ),
        lambda: owner_stub.UpdateRole(
            az.UpdateRoleRequest(role_id=root_role.role_id, name="mine"), metadata=owner_meta
        ),
        lambda: owner_stub.DeleteRole(
            az.DeleteRoleRequest(role_id=root_role.role_id), metadata=owner_meta
        ),
        lambda: owner_stub.UnassignRole(
            az.UnassignRoleRequest(role_id=root_role.role_id, user_id=root), metadata=owner_meta
        ),
    ]
    for attempt in attempts:  # one at a time: the test's server shares one connection
        assert await _code(attempt()) == grpc.StatusCode.PERMISSION_DENIED
