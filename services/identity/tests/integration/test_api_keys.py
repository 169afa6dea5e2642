"""API keys for machine callers through identity's RPCs, decided by the real authz (Z1): shown
once and stored as a hash, never more than the creator holds, resolved to the creator narrowed to
the key's permissions, refused once revoked, expired or orphaned; every change audited (L1)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.store import tables
from helios.kernel.clients import call_metadata
from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.proto.authz.v1 import authz_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.identity.v1 import identity_pb2

from .conftest import Member, OrgWorld, StartOrgWorld, utc_now

OutboxEvents = Any


@dataclasses.dataclass
class Clock:
    """A settable clock (starts now)."""

    now: dt.datetime = dataclasses.field(default_factory=utc_now)

    def __call__(self) -> dt.datetime:
        return self.now


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    code: grpc.StatusCode = caught.value.code()
    return code


async def _create(
    world: OrgWorld, who: Member, permissions: list[str], ttl_days: int = 0
) -> identity_pb2.CreateApiKeyResponse:
    reply: identity_pb2.CreateApiKeyResponse = await world.stub.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(
            org_id=world.org_id, name="ci deploy", permissions=permissions, ttl_days=ttl_days
        ),
        metadata=who.metadata,
    )
    return reply


async def _resolve(world: OrgWorld, key: str) -> identity_pb2.ResolveApiKeyResponse:
    reply: identity_pb2.ResolveApiKeyResponse = await world.stub.ResolveApiKey(
        identity_pb2.ResolveApiKeyRequest(api_key=key)
    )
    return reply


async def _member(world: OrgWorld, blueprint: int) -> Member:
    """A signed-in member whose role comes from the org's `blueprint` role."""
    name = f"type-{blueprint}"
    await world.user_type(name, blueprint)
    email = await world.sign_up()
    await world.stub.AddOrgMember(
        identity_pb2.AddOrgMemberRequest(org_id=world.org_id, email=email, user_type=name),
        metadata=world.owner.metadata,
    )
    return await world.sign_in(email)


async def test_z1_api_key_is_shown_once_and_stored_only_as_a_hash(
    org_world: StartOrgWorld,
    outbox_events: OutboxEvents,
    db_session: async_sessionmaker[AsyncSession],
) -> None:
    """Z1: the key reads hk_<id>_<secret>; the row holds the sha256 of the secret and nothing
    that equals the key or the secret; listing shows the key without it; creation is audited."""
    world = await org_world()

    created = await _create(world, world.owner, ["iam.member.list", "iam.member.list"], 30)

    key = created.api_key
    assert key.startswith("hk_")
    key_hex, secret = key[3:].split("_", 1)
    assert key_hex == created.api_key_id.replace("-", "")
    async with db_session() as session:
        row = (
            await session.execute(
                select(tables.api_keys).where(tables.api_keys.c.id == created.api_key_id)
            )
        ).one()
    assert row.secret_hash == hashlib.sha256(secret.encode()).digest()
    assert all(key not in str(value) and secret not in str(value) for value in row)
    assert row.permissions == ["iam.member.list"]
    assert row.expires_at - row.created_at == dt.timedelta(days=30)
    listed = await world.stub.ListApiKeys(
        identity_pb2.ListApiKeysRequest(org_id=world.org_id), metadata=world.owner.metadata
    )
    (shown,) = listed.api_keys
    assert shown.api_key_id == created.api_key_id
    assert list(shown.permissions) == ["iam.member.list"]
    assert shown.created_by == world.owner.user_id
    assert secret not in str(shown)
    (event,) = [e for _, e in await outbox_events() if e.action == "identity.apiKey.create"]
    assert event.resource_id == created.api_key_id
    assert list(event.diff["permissions"]) == ["iam.member.list"]
    assert secret not in str(event)


async def test_z1_a_key_resolves_to_its_creator_narrowed_to_its_permissions(
    org_world: StartOrgWorld,
    principal_keys: tuple[Path, Path],
    db_session: async_sessionmaker[AsyncSession],
) -> None:
    """Z1: ResolveApiKey gives the creator's principal in the key's org with session
    `apikey:<id>`, a signed assertion of it and the permission list; the assertion works on
    identity's RPCs like a session's, and the use is recorded."""
    world = await org_world()
    created = await _create(world, world.owner, ["iam.member.list"])

    resolved = await _resolve(world, created.api_key)

    assert resolved.principal.actor_type == principal_pb2.ACTOR_TYPE_USER
    assert resolved.principal.actor_id == world.owner.user_id
    assert resolved.principal.org_id == world.org_id
    assert resolved.principal.session_id == f"apikey:{created.api_key_id}"
    assert list(resolved.permissions) == ["iam.member.list"]
    verified = AssertionVerifier([load_public_key(principal_keys[1])]).verify(resolved.assertion)
    assert verified.actor_id == world.owner.user_id
    members = await world.stub.ListOrgMembers(
        identity_pb2.ListOrgMembersRequest(org_id=world.org_id),
        metadata=call_metadata(assertion=resolved.assertion),
    )
    assert [m.user.user_id for m in members.members] == [world.owner.user_id]
    async with db_session() as session:
        used = (
            await session.execute(
                select(tables.api_keys.c.last_used_at).where(
                    tables.api_keys.c.id == created.api_key_id
                )
            )
        ).scalar_one()
    assert used is not None
    minting = world.stub.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(
            org_id=world.org_id, name="again", permissions=["iam.member.list"]
        ),
        metadata=call_metadata(assertion=resolved.assertion),
    )
    assert await _code(minting) == grpc.StatusCode.PERMISSION_DENIED


async def test_z1_a_key_never_carries_more_than_its_creator_holds(
    org_world: StartOrgWorld, db_session: async_sessionmaker[AsyncSession]
) -> None:
    """Z1: no escalation: the owner cannot put a platform key or an undeclared key into an API
    key; an Employee creates keys with what it holds (`own` scope) but not with an admin
    permission; a Client may not create keys at all. Malformed input, and a permission only a
    person in a session may use, are INVALID_ARGUMENT; nothing refused is stored."""
    world = await org_world()
    for permissions in (["platform.org.create"], ["iam.member.list", "nothing.at.all"]):
        refused = _create(world, world.owner, permissions)
        assert await _code(refused) == grpc.StatusCode.PERMISSION_DENIED
    for permissions, ttl in (
        ([], 0),
        (["iam.member"], 0),
        (["iam.member.list:any"], 0),
        (["iam.member.list", "iam.user.impersonate"], 0),
    ):
        assert await _code(_create(world, world.owner, permissions, ttl)) == (
            grpc.StatusCode.INVALID_ARGUMENT
        )
    for ttl in (366, -1):
        assert await _code(_create(world, world.owner, ["iam.member.list"], ttl)) == (
            grpc.StatusCode.INVALID_ARGUMENT
        )
    employee = await _member(world, authz_pb2.ROLE_BLUEPRINT_EMPLOYEE)
    own = await _create(world, employee, ["identity.mfa.read"])
    assert own.api_key.startswith("hk_")
    admin_only = _create(world, employee, ["iam.member.list"])
    assert await _code(admin_only) == grpc.StatusCode.PERMISSION_DENIED
    client = await _member(world, authz_pb2.ROLE_BLUEPRINT_CLIENT)
    assert await _code(_create(world, client, ["identity.mfa.read"])) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    async with db_session() as session:
        stored = (await session.execute(select(tables.api_keys.c.id))).scalars().all()
    assert [str(key) for key in stored] == [own.api_key_id]


async def test_z1_revoked_expired_or_orphaned_keys_are_refused(
    org_world: StartOrgWorld,
    outbox_events: OutboxEvents,
    db_session: async_sessionmaker[AsyncSession],
) -> None:
    """Z1: a revoked key, a key past its expiry, a key whose creator left the org, a key with a
    wrong secret and a malformed key all resolve to UNAUTHENTICATED. Revoking is audited once
    (a second revoke changes nothing); removing a member revokes their keys."""
    clock = Clock()
    world = await org_world(clock=clock)
    revoked = await _create(world, world.owner, ["iam.member.list"])
    expiring = await _create(world, world.owner, ["iam.member.list"], 1)
    employee = await _member(world, authz_pb2.ROLE_BLUEPRINT_EMPLOYEE)
    orphaned = await _create(world, employee, ["identity.mfa.read"])
    unlinked = await _create(world, world.owner, ["iam.member.list"])
    for key in (revoked, expiring, orphaned, unlinked):
        await _resolve(world, key.api_key)

    for _ in range(2):
        await world.stub.RevokeApiKey(
            identity_pb2.RevokeApiKeyRequest(api_key_id=revoked.api_key_id),
            metadata=world.owner.metadata,
        )
    clock.now += dt.timedelta(days=1)
    await world.stub.RemoveOrgMember(
        identity_pb2.RemoveOrgMemberRequest(org_id=world.org_id, user_id=employee.user_id),
        metadata=world.owner.metadata,
    )
    secret = unlinked.api_key[36:]  # hk_ + 32 hex + _
    wrong = unlinked.api_key[:36] + ("A" if secret[0] != "A" else "B") + secret[1:]
    for key in (revoked.api_key, expiring.api_key, orphaned.api_key, wrong):
        assert await _code(_resolve(world, key)) == grpc.StatusCode.UNAUTHENTICATED
    assert (await _resolve(world, unlinked.api_key)).principal.actor_id == world.owner.user_id

    async with db_session() as session, session.begin():
        await session.execute(
            delete(tables.memberships).where(tables.memberships.c.user_id == world.owner.user_id)
        )

    assert await _code(_resolve(world, unlinked.api_key)) == grpc.StatusCode.UNAUTHENTICATED
    for malformed in ("", "hk_", "hls_abc", unlinked.api_key + "x"):
        assert await _code(_resolve(world, malformed)) == grpc.StatusCode.UNAUTHENTICATED
    events = [e for _, e in await outbox_events()]
    revocations = [e for e in events if e.action == "identity.apiKey.revoke"]
    assert [e.resource_id for e in revocations] == [revoked.api_key_id]
    (removal,) = [e for e in events if e.action == "identity.member.remove"]
    assert list(removal.diff["api_keys_revoked"]) == [orphaned.api_key_id]


async def test_z1_listing_and_revoking_follow_the_scopes(org_world: StartOrgWorld) -> None:
    """Z1: with `identity.apiKey.list:own` an Employee sees only its own keys, the owner
    (`any`) sees every key; an Employee (no `identity.apiKey.delete`: dangerous) cannot revoke
    the owner's key, the owner revokes the Employee's; another org's key is NOT_FOUND for
    its owner."""
    world = await org_world()
    other = await org_world()
    owners = await _create(world, world.owner, ["iam.member.list"])
    employee = await _member(world, authz_pb2.ROLE_BLUEPRINT_EMPLOYEE)
    mine = await _create(world, employee, ["identity.mfa.read"])

    def listing(who: Member) -> Any:
        return world.stub.ListApiKeys(
            identity_pb2.ListApiKeysRequest(org_id=world.org_id), metadata=who.metadata
        )

    assert [k.api_key_id for k in (await listing(employee)).api_keys] == [mine.api_key_id]
    assert {k.api_key_id for k in (await listing(world.owner)).api_keys} == {
        owners.api_key_id,
        mine.api_key_id,
    }
    steal = world.stub.RevokeApiKey(
        identity_pb2.RevokeApiKeyRequest(api_key_id=owners.api_key_id),
        metadata=employee.metadata,
    )
    assert await _code(steal) == grpc.StatusCode.PERMISSION_DENIED
    foreign = other.stub.RevokeApiKey(
        identity_pb2.RevokeApiKeyRequest(api_key_id=owners.api_key_id),
        metadata=other.owner.metadata,
    )
    assert await _code(foreign) == grpc.StatusCode.NOT_FOUND
    await world.stub.RevokeApiKey(
        identity_pb2.RevokeApiKeyRequest(api_key_id=mine.api_key_id), metadata=world.owner.metadata
    )
    assert (await listing(employee)).api_keys[0].HasField("revoked_at")
