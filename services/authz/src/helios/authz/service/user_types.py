"""User types with a default role (Z4): a user of the type holds that role without an assignment."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from helios.authz.domain.model import RoleRecord, UserTypeRecord
from helios.authz.ports import AuthzTransaction, UnitOfWork
from helios.authz.service.access import Access
from helios.authz.service.writes import description, name, page_size, record_write, uuid_of
from helios.authz.service.writes import user_id as valid_user
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import FailedPreconditionError, NotFoundError
from helios.proto.authz.v1 import events_pb2

__all__ = ["UserTypeService"]

_KIND = events_pb2.POLICY_CHANGE_KIND_USER_TYPE


class UserTypeService:
    """User type CRUD and setting a user's type; giving a default role is a grant (the caller
    must hold the role's grants itself)."""

    def __init__(self, uow: UnitOfWork, access: Access, clock: Callable[[], dt.datetime]) -> None:
        self._uow = uow
        self._access = access
        self._clock = clock

    @staticmethod
    async def _user_type(tx: AuthzTransaction, org_id: str, user_type_id: str) -> UserTypeRecord:
        found = await tx.user_types.get(uuid_of(user_type_id, "user_type_id"))
        if found is None or found.org_id != org_id:
            raise NotFoundError("no such user type in this org")
        return found

    @staticmethod
    async def _role(tx: AuthzTransaction, org_id: str, role_id: str) -> RoleRecord:
        role = await tx.roles.get(uuid_of(role_id, "default_role_id"))
        if role is None or role.org_id != org_id:
            raise NotFoundError("no such role in this org")
        return role

    async def create(
        self, ctx: CallContext, org_id: str, type_name: str, text: str, default_role_id: str
    ) -> UserTypeRecord:
        """A new user type, optionally with a default role."""
        actor = await self._access.authorize(ctx, org_id, "authz.userType.create", "authz.userType")
        type_name, text = name(type_name), description(text)
        async with self._uow() as tx:
            role = await self._role(tx, actor.org_id, default_role_id) if default_role_id else None
            if role is not None:
                await self._access.ensure_grantable(ctx, role.grants)
            revision = await tx.revisions.bump(actor.org_id)
            now = self._clock()
            created = UserTypeRecord(
                uuid.uuid4(),
                actor.org_id,
                type_name,
                text,
                role.id if role else None,
                now,
                now,
                revision,
            )
            await tx.user_types.add(created)
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _KIND,
                Change(
                    "authz.userType.create",
                    "authz.userType",
                    str(created.id),
                    diff={"name": type_name, "default_role": role.name if role else ""},
                ),
            )
        return created

    async def get(
        self, ctx: CallContext, org_id: str, user_type_id: str
    ) -> tuple[UserTypeRecord, int]:
        """One user type and the revision read at."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.userType.read", "authz.userType", user_type_id
        )
        async with self._uow() as tx:
            revision = await tx.revisions.current(actor.org_id)
            return await self._user_type(tx, actor.org_id, user_type_id), revision

    async def page(
        self, ctx: CallContext, org_id: str, size: int, page_token: str
    ) -> tuple[list[UserTypeRecord], str, int]:
        """A page of the org's user types ordered by name."""
        actor = await self._access.authorize(ctx, org_id, "authz.userType.list", "authz.userType")
        limit = page_size(size)
        async with self._uow() as tx:
            revision = await tx.revisions.current(actor.org_id)
            found = await tx.user_types.page(actor.org_id, page_token, limit + 1)
        page = found[:limit]
        return page, page[-1].name if len(found) > limit else "", revision

    async def update(
        self,
        ctx: CallContext,
        org_id: str,
        user_type_id: str,
        new_name: str | None,
        new_description: str | None,
        new_default_role_id: str | None,
    ) -> UserTypeRecord:
        """Change name, description or default role ("" removes it); a new default role is a
        grant to every user of the type (D1)."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.userType.update", "authz.userType", user_type_id
        )
        async with self._uow() as tx:
            current = await self._user_type(tx, actor.org_id, user_type_id)
            default = current.default_role_id
            role_name = ""
            if new_default_role_id is not None:
                role = (
                    await self._role(tx, actor.org_id, new_default_role_id)
                    if new_default_role_id
                    else None
                )
                if role is not None and role.id != current.default_role_id:
                    await self._access.ensure_grantable(ctx, role.grants)
                default, role_name = (role.id, role.name) if role else (None, "")
            revision = await tx.revisions.bump(actor.org_id)
            updated = await tx.user_types.update(
                current,
                name=current.name if new_name is None else name(new_name),
                description=current.description
                if new_description is None
                else description(new_description),
                default_role_id=default,
                revision=revision,
                now=self._clock(),
            )
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _KIND,
                Change(
                    "authz.userType.update",
                    "authz.userType",
                    str(current.id),
                    diff={
                        "name": [current.name, updated.name],
                        "default_role_id": [
                            str(current.default_role_id or ""),
                            str(updated.default_role_id or ""),
                        ],
                        "default_role": role_name,
                    },
                ),
            )
        return updated

    async def delete(self, ctx: CallContext, org_id: str, user_type_id: str) -> int:
        """Delete a user type; FAILED_PRECONDITION while users still have it."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.userType.delete", "authz.userType", user_type_id
        )
        async with self._uow() as tx:
            current = await self._user_type(tx, actor.org_id, user_type_id)
            users = await tx.user_types.users_count(current.id)
            if users:
                raise FailedPreconditionError(
                    f"{users} user(s) still have this user type; give them another type first"
                )
            revision = await tx.revisions.bump(actor.org_id)
            await tx.user_types.delete(current, revision)
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _KIND,
                Change(
                    "authz.userType.delete",
                    "authz.userType",
                    str(current.id),
                    diff={"name": current.name},
                ),
            )
        return revision

    async def assign(
        self, ctx: CallContext, org_id: str, user_id: str, user_type_id: str
    ) -> tuple[str, int]:
        """Set the user's type ("" removes it); idempotent. Returns the type and revision."""
        actor = await self._access.authorize(ctx, org_id, "authz.userType.assign", "authz.userType")
        user = valid_user(user_id)
        async with self._uow() as tx:
            wanted = await self._user_type(tx, actor.org_id, user_type_id) if user_type_id else None
            before = await tx.user_types.of_user(actor.org_id, user)
            after = wanted.id if wanted else None
            if before == after:
                return str(after or ""), await tx.revisions.current(actor.org_id)
            if wanted is not None and wanted.default_role_id is not None:
                role = await tx.roles.get(wanted.default_role_id)
                if role is not None:
                    await self._access.ensure_grantable(ctx, role.grants)
            revision = await tx.revisions.bump(actor.org_id)
            await tx.user_types.set_of_user(actor.org_id, user, after, revision)
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _KIND,
                Change(
                    "authz.userType.assign",
                    "authz.userType",
                    str(after or before or ""),
                    diff={
                        "user_id": user,
                        "user_type_id": [str(before or ""), str(after or "")],
                        "dangerous": True,
                    },
                ),
                [user],
            )
        return str(after or ""), revision
