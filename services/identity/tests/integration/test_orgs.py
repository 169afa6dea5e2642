"""Org administration through identity's RPCs, decided by the real authz: creating orgs (platform
root or a Helios service, Z6), the org sign-in policy (A3, A8), unlocking a member (A1); every
change audited (L1)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.store import tables
from helios.proto.authz.v1 import authz_pb2
from helios.proto.identity.v1 import identity_pb2

from .conftest import PASSWORD, Member, OrgWorld, StartOrgWorld

OutboxEvents = Any


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    code: grpc.StatusCode = caught.value.code()
    return code


def _create(slug: str, owner_id: str) -> identity_pb2.CreateOrgRequest:
    return identity_pb2.CreateOrgRequest(slug=slug, name="New org", owner_user_id=owner_id)


def _slug() -> str:
    return f"org-{uuid.uuid4().hex[:10]}"


async def _client_member(world: OrgWorld) -> Member:
    """A signed-in member whose role is the Client blueprint (no administration rights)."""
    name = f"client-{uuid.uuid4().hex[:6]}"
    await world.user_type(name, authz_pb2.ROLE_BLUEPRINT_CLIENT)
    email = await world.sign_up()
    await world.stub.AddOrgMember(
        identity_pb2.AddOrgMemberRequest(org_id=world.org_id, email=email, user_type=name),
        metadata=world.owner.metadata,
    )
    return await world.sign_in(email)


async def test_z6_only_the_platform_root_or_a_service_creates_orgs(
    org_world: StartOrgWorld, outbox_events: OutboxEvents
) -> None:
    """Z6: CreateOrg (`platform.org.create`) succeeds for the platform root and for a Helios
    service calling without a principal; an org owner and the edge without a principal are
    refused. The root's right is decided in the platform org, whatever org its session is in.
    The creation is audited as `identity.org.create` (authz seeds from it)."""
    world = await org_world()
    root_email = await world.sign_up()
    root_id = (
        await world.stub.SignIn(identity_pb2.SignInRequest(email=root_email, password=PASSWORD))
    ).user.user_id
    by_service = await world.identity.stub("audit").CreateOrg(_create(_slug(), root_id))
    assert by_service.org.org_id
    await world.authz.make_root(root_id)
    root = await world.sign_in(root_email)

    by_root = await world.stub.CreateOrg(
        _create(_slug(), world.owner.user_id), metadata=root.metadata
    )

    assert by_root.org.name == "New org"
    refused_owner = world.stub.CreateOrg(
        _create(_slug(), world.owner.user_id), metadata=world.owner.metadata
    )
    assert await _code(refused_owner) == grpc.StatusCode.PERMISSION_DENIED
    refused_edge = world.stub.CreateOrg(_create(_slug(), world.owner.user_id))
    assert await _code(refused_edge) == grpc.StatusCode.PERMISSION_DENIED
    bad_owner = world.stub.CreateOrg(_create(_slug(), "nobody"), metadata=root.metadata)
    assert await _code(bad_owner) == grpc.StatusCode.INVALID_ARGUMENT
    created = {e.org_id: e for _, e in await outbox_events() if e.action == "identity.org.create"}
    assert created[by_root.org.org_id].actor_id == root_id
    assert created[by_root.org.org_id].diff["owner_user_id"] == world.owner.user_id


async def test_a3_a8_owner_updates_the_org_sign_in_policy(
    org_world: StartOrgWorld,
    outbox_events: OutboxEvents,
    db_session: async_sessionmaker[AsyncSession],
) -> None:
    """A3, A8: the owner requires 2FA and allows magic links for the org; the row changes and
    the audit event carries both values before and after. Without a policy: INVALID_ARGUMENT."""
    world = await org_world()

    reply = await world.stub.UpdateOrgAuthPolicy(
        identity_pb2.UpdateOrgAuthPolicyRequest(
            org_id=world.org_id,
            auth_policy=identity_pb2.OrgAuthPolicy(require_mfa=True, magic_link_enabled=True),
        ),
        metadata=world.owner.metadata,
    )

    assert reply.org.org_id == world.org_id
    assert reply.org.auth_policy.require_mfa
    assert reply.org.auth_policy.magic_link_enabled
    async with db_session() as session:
        row = (
            await session.execute(select(tables.orgs).where(tables.orgs.c.id == world.org_id))
        ).one()
    assert (row.require_mfa, row.magic_link_enabled) == (True, True)
    (event,) = [e for _, e in await outbox_events() if e.action == "identity.org.updateAuthPolicy"]
    assert event.org_id == world.org_id
    assert event.actor_id == world.owner.user_id
    assert list(event.diff["require_mfa"]) == [False, True]
    assert list(event.diff["magic_link_enabled"]) == [False, True]
    missing = world.stub.UpdateOrgAuthPolicy(
        identity_pb2.UpdateOrgAuthPolicyRequest(org_id=world.org_id),
        metadata=world.owner.metadata,
    )
    assert await _code(missing) == grpc.StatusCode.INVALID_ARGUMENT


async def test_z1_a_plain_member_cannot_change_the_policy_or_unlock(
    org_world: StartOrgWorld, db_session: async_sessionmaker[AsyncSession]
) -> None:
    """Z1: a Client member holds neither iam.org.updateAuthPolicy nor iam.user.unlock; the
    policy stays as it was."""
    world = await org_world()
    member = await _client_member(world)
    update = world.stub.UpdateOrgAuthPolicy(
        identity_pb2.UpdateOrgAuthPolicyRequest(
            org_id=world.org_id, auth_policy=identity_pb2.OrgAuthPolicy(require_mfa=True)
        ),
        metadata=member.metadata,
    )
    assert await _code(update) == grpc.StatusCode.PERMISSION_DENIED
    unlock = world.stub.UnlockUser(
        identity_pb2.UnlockUserRequest(email=world.owner.email), metadata=member.metadata
    )
    assert await _code(unlock) == grpc.StatusCode.PERMISSION_DENIED
    async with db_session() as session:
        require_mfa = (
            await session.execute(
                select(tables.orgs.c.require_mfa).where(tables.orgs.c.id == world.org_id)
            )
        ).scalar_one()
    assert require_mfa is False


async def test_a1_owner_unlocks_a_locked_member(
    org_world: StartOrgWorld, outbox_events: OutboxEvents
) -> None:
    """A1: a member locked out by failed sign-ins is unlocked by the owner (UnlockUser,
    `iam.user.unlock`) and signs in at once; the unlock is audited in the org. An account that
    is no member of the org is NOT_FOUND."""
    world = await org_world()
    member = await _client_member(world)
    for _ in range(10):
        wrong = world.stub.SignIn(
            identity_pb2.SignInRequest(email=member.email, password="wrong password 123")
        )
        assert await _code(wrong) == grpc.StatusCode.UNAUTHENTICATED
    locked = world.stub.SignIn(identity_pb2.SignInRequest(email=member.email, password=PASSWORD))
    assert await _code(locked) == grpc.StatusCode.RESOURCE_EXHAUSTED

    reply = await world.stub.UnlockUser(
        identity_pb2.UnlockUserRequest(email=member.email), metadata=world.owner.metadata
    )

    assert reply.lifted
    signed_in = await world.stub.SignIn(
        identity_pb2.SignInRequest(email=member.email, password=PASSWORD)
    )
    assert signed_in.user.user_id == member.user_id
    (event,) = [e for _, e in await outbox_events() if e.action == "identity.user.signInUnlocked"]
    assert event.org_id == world.org_id
    assert event.resource_id == member.user_id
    assert event.actor_id == world.owner.user_id
    outsider = await world.sign_up()
    unknown = world.stub.UnlockUser(
        identity_pb2.UnlockUserRequest(email=outsider), metadata=world.owner.metadata
    )
    assert await _code(unknown) == grpc.StatusCode.NOT_FOUND
