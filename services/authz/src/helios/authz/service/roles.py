"""Roles and role assignments (Z3, Z4, Z7): every change bumps the org's revision and is audited."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from helios.authz.domain.blueprints import Blueprint
from helios.authz.domain.model import AssignmentRecord, RoleRecord
from helios.authz.ports import AuthzTransaction, UnitOfWork
from helios.authz.service.access import Access, Actor
from helios.authz.service.writes import description, name, page_size, record_write, uuid_of
from helios.authz.service.writes import user_id as valid_user
from helios.authz_rules.dangerous import is_dangerous
from helios.authz_rules.permissions import Catalog, Grant, validate_tenant_grants
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import NotFoundError, PermissionDeniedError
from helios.proto.authz.v1 import events_pb2

__all__ = ["RoleService"]

_ROLE = events_pb2.POLICY_CHANGE_KIND_ROLE
_ASSIGNMENT = events_pb2.POLICY_CHANGE_KIND_ROLE_ASSIGNMENT


def _grant_list(grants: frozenset[Grant]) -> list[str]:
    return [str(g) for g in sorted(grants)]


class RoleService:
    """Custom and blueprint roles of an org and who holds them."""

    def __init__(self, uow: UnitOfWork, access: Access, clock: Callable[[], dt.datetime]) -> None:
        self._uow = uow
        self._access = access
        self._clock = clock

    @staticmethod
    async def _role(
        tx: AuthzTransaction, org_id: str, role_id: str, ctx: CallContext | None = None
    ) -> RoleRecord:
        """The org's role; with `ctx`, a user may not touch the platform root role (Z6)."""
        role = await tx.roles.get(uuid_of(role_id, "role_id"))
        if role is None or role.org_id != org_id:
            raise NotFoundError("no such role in this org")
        if (
            ctx is not None
            and ctx.principal is not None
            and role.blueprint is Blueprint.PLATFORM_ROOT
        ):
            raise PermissionDeniedError("the platform root role is set only at deployment")
        return role

    async def _valid_grants(self, tx: AuthzTransaction, grants: frozenset[Grant]) -> None:
        validate_tenant_grants(grants)
        known = await tx.catalog.permissions({g.key for g in grants})
        validate_tenant_grants(grants, Catalog(e.spec for e in known))

    async def create(
        self, ctx: CallContext, org_id: str, role_name: str, text: str, grants: list[Grant]
    ) -> RoleRecord:
        """A custom role; platform.*, unknown keys, scopes the spec does not allow and grants
        the caller does not hold itself are refused. Audited with the granted permissions."""
        actor = await self._access.authorize(ctx, org_id, "authz.role.create", "authz.role")
        wanted = frozenset(grants)
        role_name, text = name(role_name), description(text)
        await self._access.ensure_grantable(ctx, wanted)
        async with self._uow() as tx:
            await self._valid_grants(tx, wanted)
            revision = await tx.revisions.bump(actor.org_id)
            now = self._clock()
            role = RoleRecord(
                id=uuid.uuid4(),
                org_id=actor.org_id,
                name=role_name,
                description=text,
                created_at=now,
                updated_at=now,
                revision=revision,
                grants=wanted,
            )
            await tx.roles.add(role)
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _ROLE,
                Change(
                    "authz.role.create",
                    "authz.role",
                    str(role.id),
                    diff={"name": role_name, "grants_added": _grant_list(wanted)},
                ),
            )
        return role

    async def get(self, ctx: CallContext, org_id: str, role_id: str) -> tuple[RoleRecord, int]:
        """One role of the org and the revision read at."""
        actor = await self._access.authorize(ctx, org_id, "authz.role.read", "authz.role", role_id)
        async with self._uow() as tx:
            revision = await tx.revisions.current(actor.org_id)
            return await self._role(tx, actor.org_id, role_id), revision

    async def page(
        self, ctx: CallContext, org_id: str, size: int, page_token: str
    ) -> tuple[list[RoleRecord], str, int]:
        """A page of the org's roles ordered by name."""
        actor = await self._access.authorize(ctx, org_id, "authz.role.list", "authz.role")
        limit = page_size(size)
        async with self._uow() as tx:
            revision = await tx.revisions.current(actor.org_id)
            found = await tx.roles.page(actor.org_id, page_token, limit + 1)
        page = found[:limit]
        return page, page[-1].name if len(found) > limit else "", revision

    async def update(
        self,
        ctx: CallContext,
        org_id: str,
        role_id: str,
        new_name: str | None,
        new_description: str | None,
        new_grants: list[Grant] | None,
    ) -> RoleRecord:
        """Rename, redescribe or replace the grants (a permission grant: D1). Audited with the
        grants added and removed; history kept for Explain."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.role.update", "authz.role", role_id
        )
        async with self._uow() as tx:
            role = await self._role(tx, actor.org_id, role_id, ctx)
            grants = role.grants if new_grants is None else frozenset(new_grants)
            added, removed = grants - role.grants, role.grants - grants
            await self._valid_grants(tx, added)
            await self._access.ensure_grantable(ctx, added)
            revision = await tx.revisions.bump(actor.org_id)
            updated = await tx.roles.update(
                role,
                name=role.name if new_name is None else name(new_name),
                description=role.description
                if new_description is None
                else description(new_description),
                grants=grants,
                revision=revision,
                now=self._clock(),
            )
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _ROLE,
                Change(
                    "authz.role.update",
                    "authz.role",
                    str(role.id),
                    diff={
                        "name": [role.name, updated.name],
                        "grants_added": _grant_list(added),
                        "grants_removed": _grant_list(removed),
                        "dangerous": is_dangerous("authz.role.update", True, frozenset()),
                    },
                ),
            )
        return updated

    async def delete(self, ctx: CallContext, org_id: str, role_id: str) -> int:
        """Delete a role and end its assignments; history is kept for Explain."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.role.delete", "authz.role", role_id
        )
        async with self._uow() as tx:
            role = await self._role(tx, actor.org_id, role_id, ctx)
            revision = await tx.revisions.bump(actor.org_id)
            await tx.roles.delete(role, revision)
            ended = await tx.assignments.remove_all_of_role(role.id, revision)
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _ROLE,
                Change(
                    "authz.role.delete",
                    "authz.role",
                    str(role.id),
                    diff={
                        "name": role.name,
                        "grants_removed": _grant_list(role.grants),
                        "assignments_removed": sorted(a.user_id for a in ended),
                    },
                ),
            )
        return revision

    async def assign(
        self, ctx: CallContext, org_id: str, role_id: str, user_id: str
    ) -> AssignmentRecord:
        """Give a user a role of the org; idempotent. A role assignment is dangerous (D1) and
        audited so; the caller must hold every grant of the role itself."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.roleAssignment.create", "authz.roleAssignment"
        )
        user_id = valid_user(user_id)
        async with self._uow() as tx:
            role = await self._role(tx, actor.org_id, role_id, ctx)
            await self._access.ensure_grantable(ctx, role.grants)
            existing = await tx.assignments.current(actor.org_id, user_id, role.id)
            if existing is not None:
                return existing
            return await self._assign(tx, ctx, actor, role, user_id)

    async def _assign(
        self, tx: AuthzTransaction, ctx: CallContext, actor: Actor, role: RoleRecord, user_id: str
    ) -> AssignmentRecord:
        revision = await tx.revisions.bump(actor.org_id)
        assignment = AssignmentRecord(
            id=uuid.uuid4(),
            org_id=actor.org_id,
            user_id=user_id,
            role_id=role.id,
            granted_by=actor.name,
            created_at=self._clock(),
            revision=revision,
        )
        await tx.assignments.add(assignment)
        await record_write(
            tx,
            ctx,
            actor,
            revision,
            _ASSIGNMENT,
            Change(
                "authz.role.assign",
                "authz.roleAssignment",
                str(assignment.id),
                diff={
                    "user_id": user_id,
                    "role_id": str(role.id),
                    "role_name": role.name,
                    "grants_added": _grant_list(role.grants),
                    "dangerous": True,
                    "dangerous_class": "role assignment",
                    "granted_by": actor.name,
                },
            ),
            [user_id],
        )
        return assignment

    async def assign_as_seed(
        self, tx: AuthzTransaction, ctx: CallContext, actor: Actor, role: RoleRecord, user_id: str
    ) -> AssignmentRecord:
        """Assign inside the caller's transaction (blueprint seeding gives the owner Owner)."""
        return await self._assign(tx, ctx, actor, role, valid_user(user_id))

    async def unassign(self, ctx: CallContext, org_id: str, role_id: str, user_id: str) -> int:
        """Take a role from a user; idempotent (returns the current revision when absent)."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.roleAssignment.delete", "authz.roleAssignment"
        )
        user_id = valid_user(user_id)
        async with self._uow() as tx:
            role = await self._role(tx, actor.org_id, role_id, ctx)
            existing = await tx.assignments.current(actor.org_id, user_id, role.id)
            if existing is None:
                return await tx.revisions.current(actor.org_id)
            revision = await tx.revisions.bump(actor.org_id)
            await tx.assignments.remove(existing, revision)
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _ASSIGNMENT,
                Change(
                    "authz.role.unassign",
                    "authz.roleAssignment",
                    str(existing.id),
                    diff={
                        "user_id": user_id,
                        "role_id": str(role.id),
                        "role_name": role.name,
                        "grants_removed": _grant_list(role.grants),
                    },
                ),
                [user_id],
            )
        return revision

    async def list_assignments(
        self, ctx: CallContext, org_id: str, user_id: str, role_id: str, size: int, page_token: str
    ) -> tuple[list[AssignmentRecord], str, int]:
        """A page of the org's live assignments, optionally of one user or role."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.roleAssignment.list", "authz.roleAssignment"
        )
        limit = page_size(size)
        role = uuid_of(role_id, "role_id") if role_id else None
        after = str(uuid_of(page_token, "page_token")) if page_token else ""
        async with self._uow() as tx:
            revision = await tx.revisions.current(actor.org_id)
            found = await tx.assignments.page(
                actor.org_id, user_id=user_id, role_id=role, after=after, limit=limit + 1
            )
        page = found[:limit]
        return page, str(page[-1].id) if len(found) > limit else "", revision
