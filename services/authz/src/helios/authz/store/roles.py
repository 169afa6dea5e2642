"""Roles, their grant history and role assignments in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Row, Select, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from helios.authz.domain.blueprints import Blueprint
from helios.authz.domain.model import AssignmentRecord, RoleRecord
from helios.authz.store.history import live
from helios.authz.store.tables import (
    assignments,
    org_revisions,
    role_grants,
    role_names,
    roles,
)
from helios.authz_rules.permissions import Grant, Scope, parse_key
from helios.kernel.db import insert_unique
from helios.kernel.errors import AlreadyExistsError

__all__ = ["PgAssignments", "PgRoles"]

_CUSTOM = "custom"


def _name_taken() -> AlreadyExistsError:
    return AlreadyExistsError("a role with this name exists in the org", field="name")


def _assignment(row: Row[Any]) -> AssignmentRecord:
    return AssignmentRecord(
        id=row.id,
        org_id=row.org_id,
        user_id=row.user_id,
        role_id=row.role_id,
        granted_by=row.granted_by,
        created_at=row.created_at,
        revision=row.added_revision,
    )


class PgRoles:
    """RoleStore over `authz.roles` and `authz.role_grants`."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def _grants(self, role_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[Grant]]:
        found: dict[uuid.UUID, set[Grant]] = {r: set() for r in role_ids}
        if not role_ids:
            return found
        rows = await self._s.execute(
            select(role_grants.c.role_id, role_grants.c.permission_key, role_grants.c.scope).where(
                role_grants.c.role_id.in_(role_ids), live(role_grants)
            )
        )
        for role_id, key, scope in rows:
            found[role_id].add(Grant(parse_key(key), Scope(scope)))
        return found

    async def _roles(self, statement: Select[Any]) -> list[RoleRecord]:
        rows = list(await self._s.execute(statement))
        grants = await self._grants([row.id for row in rows])
        return [
            RoleRecord(
                id=row.id,
                org_id=row.org_id,
                name=row.name,
                description=row.description,
                created_at=row.created_at,
                updated_at=row.updated_at,
                revision=row.revision,
                grants=frozenset(grants[row.id]),
                blueprint=None if row.blueprint == _CUSTOM else Blueprint(row.blueprint),
            )
            for row in rows
        ]

    async def _insert_grants(
        self, role_id: uuid.UUID, grants: frozenset[Grant], revision: int
    ) -> None:
        if grants:
            await self._s.execute(
                role_grants.insert(),
                [
                    {
                        "role_id": role_id,
                        "permission_key": str(g.key),
                        "scope": g.scope.value,
                        "added_revision": revision,
                    }
                    for g in sorted(grants)
                ],
            )

    async def add(self, role: RoleRecord) -> None:
        await insert_unique(
            self._s,
            roles.insert().values(
                id=role.id,
                org_id=role.org_id,
                name=role.name,
                description=role.description,
                created_at=role.created_at,
                updated_at=role.updated_at or role.created_at,
                revision=role.revision,
                blueprint=role.blueprint.value if role.blueprint else _CUSTOM,
            ),
            _name_taken(),
        )
        await self._s.execute(
            role_names.insert().values(
                role_id=role.id, name=role.name, added_revision=role.revision
            )
        )
        await self._insert_grants(role.id, role.grants, role.revision)

    async def get(self, role_id: uuid.UUID) -> RoleRecord | None:
        found = await self._roles(
            select(roles).where(roles.c.id == role_id, roles.c.deleted_revision.is_(None))
        )
        return found[0] if found else None

    async def by_name(self, org_id: str, name: str) -> RoleRecord | None:
        found = await self._roles(
            select(roles).where(
                roles.c.org_id == org_id, roles.c.name == name, roles.c.deleted_revision.is_(None)
            )
        )
        return found[0] if found else None

    async def page(self, org_id: str, after: str, limit: int) -> list[RoleRecord]:
        return await self._roles(
            select(roles)
            .where(
                roles.c.org_id == org_id, roles.c.deleted_revision.is_(None), roles.c.name > after
            )
            .order_by(roles.c.name)
            .limit(limit)
        )

    async def extend_blueprints(self, blueprint: Blueprint, grants: frozenset[Grant]) -> list[str]:
        if not grants:
            return []
        holders = select(roles.c.org_id).where(
            roles.c.blueprint == blueprint.value, roles.c.deleted_revision.is_(None)
        )
        bumped = await self._s.execute(
            update(org_revisions)
            .where(org_revisions.c.org_id.in_(holders))
            .values(revision=org_revisions.c.revision + 1)
            .returning(org_revisions.c.org_id)
        )
        orgs = sorted(bumped.scalars())
        for grant in sorted(grants):
            await self._s.execute(
                role_grants.insert().from_select(
                    ["role_id", "permission_key", "scope", "added_revision"],
                    select(
                        roles.c.id,
                        literal(str(grant.key)),
                        literal(grant.scope.value),
                        org_revisions.c.revision,
                    )
                    .join(org_revisions, org_revisions.c.org_id == roles.c.org_id)
                    .where(
                        roles.c.blueprint == blueprint.value, roles.c.deleted_revision.is_(None)
                    ),
                )
            )
        return orgs

    async def seeded(self, org_id: str) -> bool:
        tenant_blueprints = [b.value for b in Blueprint if b is not Blueprint.PLATFORM_ROOT]
        found = await self._s.scalar(
            select(roles.c.id)
            .where(roles.c.org_id == org_id, roles.c.blueprint.in_(tenant_blueprints))
            .limit(1)
        )
        return found is not None

    async def update(
        self,
        role: RoleRecord,
        *,
        name: str,
        description: str,
        grants: frozenset[Grant],
        revision: int,
        now: dt.datetime,
    ) -> RoleRecord:
        await insert_unique(
            self._s,
            update(roles)
            .where(roles.c.id == role.id)
            .values(name=name, description=description, updated_at=now, revision=revision),
            _name_taken(),
        )
        if name != role.name:
            await self._end_name(role.id, revision)
            await self._s.execute(
                role_names.insert().values(role_id=role.id, name=name, added_revision=revision)
            )
        for gone in role.grants - grants:
            await self._s.execute(
                update(role_grants)
                .where(
                    role_grants.c.role_id == role.id,
                    role_grants.c.permission_key == str(gone.key),
                    role_grants.c.scope == gone.scope.value,
                    live(role_grants),
                )
                .values(removed_revision=revision)
            )
        await self._insert_grants(role.id, grants - role.grants, revision)
        return RoleRecord(
            id=role.id,
            org_id=role.org_id,
            name=name,
            description=description,
            created_at=role.created_at,
            updated_at=now,
            revision=revision,
            grants=grants,
            blueprint=role.blueprint,
        )

    async def _end_name(self, role_id: uuid.UUID, revision: int) -> None:
        await self._s.execute(
            update(role_names)
            .where(role_names.c.role_id == role_id, live(role_names))
            .values(removed_revision=revision)
        )

    async def delete(self, role: RoleRecord, revision: int) -> None:
        await self._s.execute(
            update(roles).where(roles.c.id == role.id).values(deleted_revision=revision)
        )
        await self._end_name(role.id, revision)
        await self._s.execute(
            update(role_grants)
            .where(role_grants.c.role_id == role.id, live(role_grants))
            .values(removed_revision=revision)
        )


class PgAssignments:
    """AssignmentStore over `authz.assignments`."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def current(
        self, org_id: str, user_id: str, role_id: uuid.UUID
    ) -> AssignmentRecord | None:
        row = (
            await self._s.execute(
                select(assignments).where(
                    assignments.c.org_id == org_id,
                    assignments.c.user_id == user_id,
                    assignments.c.role_id == role_id,
                    live(assignments),
                )
            )
        ).first()
        return None if row is None else _assignment(row)

    async def add(self, assignment: AssignmentRecord) -> None:
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

    async def remove(self, assignment: AssignmentRecord, revision: int) -> None:
        await self._s.execute(
            update(assignments)
            .where(assignments.c.id == assignment.id, live(assignments))
            .values(removed_revision=revision)
        )

    async def remove_all_of_role(self, role_id: uuid.UUID, revision: int) -> list[AssignmentRecord]:
        rows = await self._s.execute(
            update(assignments)
            .where(assignments.c.role_id == role_id, live(assignments))
            .values(removed_revision=revision)
            .returning(*assignments.c)
        )
        return [_assignment(row) for row in rows]

    async def page(
        self,
        org_id: str,
        *,
        user_id: str,
        role_id: uuid.UUID | None,
        after: str,
        limit: int,
    ) -> list[AssignmentRecord]:
        statement = select(assignments).where(assignments.c.org_id == org_id, live(assignments))
        if user_id:
            statement = statement.where(assignments.c.user_id == user_id)
        if role_id is not None:
            statement = statement.where(assignments.c.role_id == role_id)
        if after:
            statement = statement.where(assignments.c.id > uuid.UUID(after))
        rows = await self._s.execute(statement.order_by(assignments.c.id).limit(limit))
        return [_assignment(row) for row in rows]
