"""PostgreSQL implementation of authz's UnitOfWork and AuthzTransaction ports."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.authz.domain.model import (
    AssignmentRecord,
    HeldGrant,
    RegisteredPermission,
    RoleRecord,
)
from helios.authz.domain.permissions import Grant, PermissionKey, PermissionSpec, Scope, parse_key
from helios.authz.ports import AuthzTransaction
from helios.authz.store.tables import assignments, org_revisions, permissions, role_grants, roles
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.db import insert_unique
from helios.kernel.errors import AlreadyExistsError
from helios.kernel.unit_of_work import SqlUnitOfWork

__all__ = ["postgres_unit_of_work"]


def _permission(row: Row[Any]) -> RegisteredPermission:
    spec = PermissionSpec(
        parse_key(row.key),
        row.description,
        row.dangerous,
        frozenset(Scope(s) for s in row.allowed_scopes),
    )
    return RegisteredPermission(spec, row.registered_by)


class _Transaction:
    def __init__(
        self, session: AsyncSession, recorder: AuditRecorder, clock: Callable[[], dt.datetime]
    ) -> None:
        self._s = session
        self._recorder = recorder
        self._clock = clock

    async def permissions(
        self,
        keys: Collection[PermissionKey] | None = None,
        *,
        service: str = "",
        after: str = "",
        limit: int | None = None,
    ) -> list[RegisteredPermission]:
        statement = select(permissions).order_by(permissions.c.key)
        if keys is not None:
            statement = statement.where(permissions.c.key.in_([str(k) for k in keys]))
        if service:
            statement = statement.where(permissions.c.registered_by == service)
        if after:
            statement = statement.where(permissions.c.key > after)
        if limit is not None:
            statement = statement.limit(limit)
        return [_permission(row) for row in await self._s.execute(statement)]

    async def add_permissions(self, entries: list[RegisteredPermission]) -> None:
        if not entries:
            return
        await self._s.execute(
            permissions.insert(),
            [
                {
                    "key": str(e.spec.key),
                    "description": e.spec.description,
                    "dangerous": e.spec.dangerous,
                    "allowed_scopes": sorted(s.value for s in e.spec.allowed_scopes),
                    "registered_by": e.service,
                }
                for e in entries
            ],
        )

    async def revision(self, org_id: str) -> int:
        found = await self._s.scalar(
            select(org_revisions.c.revision).where(org_revisions.c.org_id == org_id)
        )
        return int(found or 0)

    async def bump_revision(self, org_id: str) -> int:
        statement = (
            insert(org_revisions)
            .values(org_id=org_id, revision=1)
            .on_conflict_do_update(
                index_elements=[org_revisions.c.org_id],
                set_={"revision": org_revisions.c.revision + 1},
            )
            .returning(org_revisions.c.revision)
        )
        return int((await self._s.execute(statement)).scalar_one())

    async def add_role(self, role: RoleRecord) -> None:
        await insert_unique(
            self._s,
            roles.insert().values(
                id=role.id,
                org_id=role.org_id,
                name=role.name,
                description=role.description,
                created_at=role.created_at,
                revision=role.revision,
            ),
            AlreadyExistsError("a role with this name exists in the org", field="name"),
        )
        if role.grants:
            await self._s.execute(
                role_grants.insert(),
                [
                    {
                        "role_id": role.id,
                        "permission_key": str(g.key),
                        "scope": g.scope.value,
                        "added_revision": role.revision,
                    }
                    for g in sorted(role.grants)
                ],
            )

    async def role(self, role_id: uuid.UUID) -> RoleRecord | None:
        row = (await self._s.execute(select(roles).where(roles.c.id == role_id))).first()
        if row is None:
            return None
        grant_rows = await self._s.execute(
            select(role_grants.c.permission_key, role_grants.c.scope).where(
                role_grants.c.role_id == role_id, role_grants.c.removed_revision.is_(None)
            )
        )
        return RoleRecord(
            id=row.id,
            org_id=row.org_id,
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            revision=row.revision,
            grants=frozenset(Grant(parse_key(k), Scope(s)) for k, s in grant_rows),
        )

    async def current_assignment(
        self, org_id: str, user_id: str, role_id: uuid.UUID
    ) -> AssignmentRecord | None:
        row = (
            await self._s.execute(
                select(assignments).where(
                    assignments.c.org_id == org_id,
                    assignments.c.user_id == user_id,
                    assignments.c.role_id == role_id,
                    assignments.c.removed_revision.is_(None),
                )
            )
        ).first()
        if row is None:
            return None
        return AssignmentRecord(
            id=row.id,
            org_id=row.org_id,
            user_id=row.user_id,
            role_id=row.role_id,
            granted_by=row.granted_by,
            created_at=row.created_at,
            revision=row.added_revision,
        )

    async def add_assignment(self, assignment: AssignmentRecord) -> None:
        await self._s.execute(
            assignments.insert().values(
                id=assignment.id,
                org_id=assignment.org_id,
                user_id=assignment.user_id,
                role_id=assignment.role_id,
                granted_by=assignment.granted_by,
                created_at=assignment.created_at,
                added_revision=assignment.revision,
            )
        )

    async def held_grants(self, org_id: str, user_id: str) -> list[HeldGrant]:
        rows = await self._s.execute(
            select(
                role_grants.c.permission_key,
                role_grants.c.scope,
                roles.c.id,
                roles.c.name,
                assignments.c.id.label("assignment_id"),
            )
            .select_from(
                assignments.join(roles, roles.c.id == assignments.c.role_id).join(
                    role_grants, role_grants.c.role_id == roles.c.id
                )
            )
            .where(
                assignments.c.org_id == org_id,
                assignments.c.user_id == user_id,
                assignments.c.removed_revision.is_(None),
                roles.c.org_id == org_id,
                role_grants.c.removed_revision.is_(None),
            )
            .order_by(roles.c.name, role_grants.c.permission_key, role_grants.c.scope)
        )
        return [
            HeldGrant(
                Grant(parse_key(row.permission_key), Scope(row.scope)),
                row.id,
                row.name,
                row.assignment_id,
            )
            for row in rows
        ]

    async def record(self, change: Change, ctx: CallContext) -> None:
        await self._recorder.record(self._s, change, ctx, self._clock())


def postgres_unit_of_work(
    sessions: async_sessionmaker[AsyncSession],
    recorder: AuditRecorder,
    clock: Callable[[], dt.datetime],
    on_commit: Callable[[], None] = lambda: None,
) -> SqlUnitOfWork[AuthzTransaction]:
    """The UnitOfWork port over PostgreSQL; commits wake the outbox relay via `on_commit`."""
    return SqlUnitOfWork(sessions, lambda s: _Transaction(s, recorder, clock), on_commit)
