"""Org memberships: adding people by e-mail with a user type, removing them, listing them.

Authz owns user types: a member's type must name one of the org's user types there, and every
change is mirrored to authz (AssignUserType, on behalf of the caller so that authz's own
permission and no-escalation rules apply) before identity's transaction commits; a refusal or an
unavailable authz rolls the membership change back.
"""

from __future__ import annotations

from google.protobuf.message import Message

from helios.identity.domain.members import (
    OWNER_USER_TYPE,
    MemberCursor,
    Membership,
    member_page_size,
    validate_user_type,
)
from helios.identity.domain.model import User
from helios.identity.domain.validation import normalize_email
from helios.identity.ports import Clock, UnitOfWork
from helios.identity.ports.members import OrgUserTypes
from helios.identity.service.org_access import OrgAccess, uuid_field
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)

__all__ = ["MemberService"]

_NO_ORG = "no such org"


class MemberService:
    """Membership use cases; each needs the caller's permission in the org (iam.member.*)."""

    def __init__(
        self, uow: UnitOfWork, clock: Clock, access: OrgAccess, user_types: OrgUserTypes
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._access = access
        self._user_types = user_types

    async def add(
        self,
        org_id: str,
        email: str,
        user_type: str,
        ctx: CallContext,
        request: Message | None,
    ) -> tuple[Membership, User]:
        """Make the account with this e-mail a member with `user_type` (`iam.member.add`).
        Raises NotFoundError for an unknown org or account, AlreadyExistsError when the user is
        a member already, InvalidArgumentError when the org has no such user type in authz."""
        principal, org = await self._access.require(ctx, "iam.member.add", org_id)
        address = normalize_email(email)
        type_name = validate_user_type(user_type)
        async with self._uow() as tx:
            if await tx.org_by_id(org, lock=True) is None:
                raise NotFoundError(_NO_ORG, field="org_id")
            user = await tx.user_by_email(address)
            if user is None:
                raise NotFoundError(
                    "no account has this e-mail; the person signs up first", field="email"
                )
            if await tx.membership(org, user.id) is not None:
                raise AlreadyExistsError("this user is a member of the org already", field="email")
            type_id = await self._user_types.find(org, type_name, principal)
            if type_id is None:
                raise InvalidArgumentError(
                    f"the org has no user type {type_name!r} (user types are managed in authz)",
                    field="user_type",
                )
            membership = Membership(org, user.id, type_name, self._clock())
            await tx.add_membership(membership)
            await tx.record(
                Change(
                    action="identity.member.add",
                    resource_type="identity.member",
                    resource_id=str(user.id),
                    org_id=str(org),
                    request=request,
                    diff={"user_id": str(user.id), "user_type": type_name},
                ),
                ctx,
            )
            await self._user_types.assign(org, user.id, type_id, principal)
        return membership, user

    async def remove(
        self, org_id: str, user_id: str, ctx: CallContext, request: Message | None
    ) -> None:
        """Remove a member (`iam.member.remove`): their sessions in the org end and the API
        keys they made there are revoked; their user type is cleared in authz. Raises
        NotFoundError when the user is no member, FailedPreconditionError for the last owner."""
        principal, org = await self._access.require(ctx, "iam.member.remove", org_id)
        member_id = uuid_field(user_id, "user_id")
        now = self._clock()
        async with self._uow() as tx:
            if await tx.org_by_id(org, lock=True) is None:
                raise NotFoundError(_NO_ORG, field="org_id")
            membership = await tx.membership(org, member_id)
            if membership is None:
                raise NotFoundError("this user is not a member of the org", field="user_id")
            if (
                membership.user_type == OWNER_USER_TYPE
                and await tx.count_members_of_type(org, OWNER_USER_TYPE) <= 1
            ):
                raise FailedPreconditionError(
                    "the org's last owner cannot be removed; make another member an owner first"
                )
            await tx.remove_membership(org, member_id)
            ended = await tx.revoke_org_sessions_of(member_id, org, now)
            revoked = await tx.revoke_api_keys_of(org, member_id, now)
            await tx.record(
                Change(
                    action="identity.member.remove",
                    resource_type="identity.member",
                    resource_id=str(member_id),
                    org_id=str(org),
                    request=request,
                    diff={
                        "user_id": str(member_id),
                        "user_type": membership.user_type,
                        "sessions_ended": ended,
                        "api_keys_revoked": [str(key) for key in revoked],
                    },
                ),
                ctx,
            )
            await self._user_types.assign(org, member_id, "", principal)

    async def page(
        self, org_id: str, page_size: int, page_token: str, ctx: CallContext
    ) -> tuple[list[tuple[Membership, User]], str]:
        """A page of the org's members by join time (`iam.member.list`) and the next page's
        token ("" on the last page)."""
        _, org = await self._access.require(ctx, "iam.member.list", org_id)
        size = member_page_size(page_size)
        after = MemberCursor.parse(page_token)
        async with self._uow() as tx:
            if await tx.org_by_id(org) is None:
                raise NotFoundError(_NO_ORG, field="org_id")
            found = await tx.members_page(org, after, size + 1)
        page = found[:size]
        if len(found) <= size:
            return page, ""
        last = page[-1][0]
        return page, MemberCursor(last.joined_at, last.user_id).token()
