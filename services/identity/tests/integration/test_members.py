"""Org memberships through identity's RPCs, decided by the real authz (Z1), with each member's
user type kept in step with authz (Z4), every change audited (L1)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.store import tables
from helios.proto.authz.v1 import authz_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.identity.v1 import identity_pb2

from .conftest import OrgWorld, StartOrgWorld

OutboxEvents = Any


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    code: grpc.StatusCode = caught.value.code()
    return code


async def _add(world: OrgWorld, email: str, user_type: str, metadata: Any = None) -> Any:
    return await world.stub.AddOrgMember(
        identity_pb2.AddOrgMemberRequest(org_id=world.org_id, email=email, user_type=user_type),
        metadata=metadata or world.owner.metadata,
    )


async def _holds_employee_rights(world: OrgWorld, user_id: str) -> bool:
    """Whether authz gives the user the Employee blueprint's `identity.mfa.enroll:own` (only
    through a user type whose default role is Employee, in these tests)."""
    principal = principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=user_id, org_id=world.org_id
    )
    return await world.authz.authorizer.allowed(
        principal, "identity.mfa.enroll", org_id=world.org_id, owner_id=user_id
    )


async def test_z4_owner_adds_a_member_with_an_authz_user_type(
    org_world: StartOrgWorld, outbox_events: OutboxEvents
) -> None:
    """Z4: the owner adds an account by e-mail with a user type of the org; the member is
    listed with it, authz gives the user that type (so its default role applies), and the
    change is audited."""
    world = await org_world()
    await world.user_type("staff", authz_pb2.ROLE_BLUEPRINT_EMPLOYEE)
    email = await world.sign_up()
    user_id = (await world.sign_in(email)).user_id
    assert not await _holds_employee_rights(world, user_id)

    reply = await _add(world, email.upper().replace("EXAMPLE.COM", "example.com"), "staff")

    assert reply.member.user.email == email
    assert reply.member.user_type == "staff"
    assert reply.member.org_id == world.org_id
    listed = await world.stub.ListOrgMembers(
        identity_pb2.ListOrgMembersRequest(org_id=world.org_id), metadata=world.owner.metadata
    )
    assert {(m.user.email, m.user_type) for m in listed.members} == {
        (world.owner.email, "owner"),
        (email, "staff"),
    }
    assert reply.member.user.user_id == user_id
    assert await _holds_employee_rights(world, user_id)
    (event,) = [e for _, e in await outbox_events() if e.action == "identity.member.add"]
    assert event.org_id == world.org_id
    assert event.actor_id == world.owner.user_id
    assert event.diff["user_type"] == "staff"


async def test_z4_adding_twice_unknown_account_or_unknown_user_type_is_refused(
    org_world: StartOrgWorld,
) -> None:
    """Z4: ALREADY_EXISTS for a member, NOT_FOUND for an account nobody signed up with,
    INVALID_ARGUMENT for a user type the org does not have in authz (and nothing is added)."""
    world = await org_world()
    await world.user_type("staff")
    email = await world.sign_up()
    await _add(world, email, "staff")

    assert await _code(_add(world, email, "staff")) == grpc.StatusCode.ALREADY_EXISTS
    assert await _code(_add(world, world.owner.email, "staff")) == grpc.StatusCode.ALREADY_EXISTS
    assert await _code(_add(world, "nobody-here@example.com", "staff")) == grpc.StatusCode.NOT_FOUND
    other = await world.sign_up()
    assert await _code(_add(world, other, "contractor")) == grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(_add(world, other, "")) == grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(_add(world, "not an e-mail", "staff")) == grpc.StatusCode.INVALID_ARGUMENT
    listed = await world.stub.ListOrgMembers(
        identity_pb2.ListOrgMembersRequest(org_id=world.org_id), metadata=world.owner.metadata
    )
    assert len(listed.members) == 2


async def test_z1_plain_member_cannot_add_remove_or_list_members(org_world: StartOrgWorld) -> None:
    """Z1: a member whose role is Client holds no iam.member.* permission: refused with
    PERMISSION_DENIED; a caller without a principal is UNAUTHENTICATED."""
    world = await org_world()
    await world.user_type("client", authz_pb2.ROLE_BLUEPRINT_CLIENT)
    email = await world.sign_up()
    await _add(world, email, "client")
    member = await world.sign_in(email)
    other = await world.sign_up()

    assert (
        await _code(_add(world, other, "client", member.metadata))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    remove = world.stub.RemoveOrgMember(
        identity_pb2.RemoveOrgMemberRequest(org_id=world.org_id, user_id=world.owner.user_id),
        metadata=member.metadata,
    )
    assert await _code(remove) == grpc.StatusCode.PERMISSION_DENIED
    listing = world.stub.ListOrgMembers(
        identity_pb2.ListOrgMembersRequest(org_id=world.org_id), metadata=member.metadata
    )
    assert await _code(listing) == grpc.StatusCode.PERMISSION_DENIED
    anonymous = world.stub.AddOrgMember(
        identity_pb2.AddOrgMemberRequest(org_id=world.org_id, email=other, user_type="client")
    )
    assert await _code(anonymous) == grpc.StatusCode.UNAUTHENTICATED


async def test_z1_owner_of_another_org_is_refused(org_world: StartOrgWorld) -> None:
    """Z1: an org's owner cannot add people to, or list, another org."""
    first = await org_world()
    second = await org_world()
    email = await first.sign_up()
    await first.user_type("staff")
    crossing = first.stub.AddOrgMember(
        identity_pb2.AddOrgMemberRequest(org_id=first.org_id, email=email, user_type="staff"),
        metadata=second.owner.metadata,
    )
    assert await _code(crossing) == grpc.StatusCode.PERMISSION_DENIED
    listing = first.stub.ListOrgMembers(
        identity_pb2.ListOrgMembersRequest(org_id=first.org_id), metadata=second.owner.metadata
    )
    assert await _code(listing) == grpc.StatusCode.PERMISSION_DENIED


async def test_z4_removing_a_member_ends_their_sessions_in_the_org_and_clears_the_type(
    org_world: StartOrgWorld,
    outbox_events: OutboxEvents,
    db_session: async_sessionmaker[AsyncSession],
) -> None:
    """Z4: removal deletes the membership, revokes the member's sessions in that org, clears
    their user type in authz, and is audited with what it ended."""
    world = await org_world()
    await world.user_type("staff", authz_pb2.ROLE_BLUEPRINT_EMPLOYEE)
    email = await world.sign_up()
    added = await _add(world, email, "staff")
    member = await world.sign_in(email)
    user_id = added.member.user.user_id
    assert await _holds_employee_rights(world, user_id)

    await world.stub.RemoveOrgMember(
        identity_pb2.RemoveOrgMemberRequest(org_id=world.org_id, user_id=user_id),
        metadata=world.owner.metadata,
    )

    async with db_session() as session:
        revoked = (
            await session.execute(
                select(tables.sessions.c.revoked_at).where(
                    tables.sessions.c.id == member.session_id
                )
            )
        ).scalar_one()
        still = (
            await session.execute(
                select(tables.memberships).where(tables.memberships.c.user_id == user_id)
            )
        ).all()
    assert revoked is not None
    assert still == []
    assert not await _holds_employee_rights(world, user_id)
    (event,) = [e for _, e in await outbox_events() if e.action == "identity.member.remove"]
    assert event.diff["sessions_ended"] == 1
    again = world.stub.RemoveOrgMember(
        identity_pb2.RemoveOrgMemberRequest(org_id=world.org_id, user_id=user_id),
        metadata=world.owner.metadata,
    )
    assert await _code(again) == grpc.StatusCode.NOT_FOUND


async def test_z4_the_last_owner_cannot_be_removed(org_world: StartOrgWorld) -> None:
    """Z4: removing the org's only owner is FAILED_PRECONDITION; the owner stays."""
    world = await org_world()
    remove = world.stub.RemoveOrgMember(
        identity_pb2.RemoveOrgMemberRequest(org_id=world.org_id, user_id=world.owner.user_id),
        metadata=world.owner.metadata,
    )
    assert await _code(remove) == grpc.StatusCode.FAILED_PRECONDITION
    listed = await world.stub.ListOrgMembers(
        identity_pb2.ListOrgMembersRequest(org_id=world.org_id), metadata=world.owner.metadata
    )
    assert [m.user.user_id for m in listed.members] == [world.owner.user_id]


async def test_z4_members_are_listed_in_pages(org_world: StartOrgWorld) -> None:
    """Z4: page_size bounds each page, the token continues where the last one ended, every
    member appears once; a forged token or a page size out of range is INVALID_ARGUMENT."""
    world = await org_world()
    await world.user_type("staff")
    emails = {world.owner.email}
    for _ in range(4):
        email = await world.sign_up()
        await _add(world, email, "staff")
        emails.add(email)

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await world.stub.ListOrgMembers(
            identity_pb2.ListOrgMembersRequest(org_id=world.org_id, page_size=2, page_token=token),
            metadata=world.owner.metadata,
        )
        pages += 1
        assert len(page.members) <= 2
        seen.extend(m.user.email for m in page.members)
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert sorted(seen) == sorted(emails)
    for request in (
        identity_pb2.ListOrgMembersRequest(org_id=world.org_id, page_token="bm90IGEgdG9rZW4"),
        identity_pb2.ListOrgMembersRequest(org_id=world.org_id, page_size=1000),
    ):
        listing = world.stub.ListOrgMembers(request, metadata=world.owner.metadata)
        assert await _code(listing) == grpc.StatusCode.INVALID_ARGUMENT
