"""User types, their default-role history and users' types in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from helios.authz.domain.model import UserTypeRecord
from helios.authz.store.history import live
from helios.authz.store.tables import user_type_defaults, user_type_members, user_types
from helios.kernel.db import insert_unique
from helios.kernel.errors import AlreadyExistsError

__all__ = ["PgUserTypes"]

_DEFAULT = (
    select(user_type_defaults.c.role_id)
    .where(user_type_defaults.c.user_type_id == user_types.c.id, live(user_type_defaults))
    .scalar_subquery()
    .label("default_role_id")
)


def _user_type(row: Row[Any]) -> UserTypeRecord:
    return UserTypeRecord(
        id=row.id,
        org_id=row.org_id,
        name=row.name,
        description=row.description,
        default_role_id=row.default_role_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        revision=row.revision,
    )


class PgUserTypes:
    """UserTypeStore over `authz.user_types`, `user_type_defaults` and `user_type_members`."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def _set_default(
        self, user_type_id: uuid.UUID, role_id: uuid.UUID | None, revision: int
    ) -> None:
        await self._s.execute(
            update(user_type_defaults)
            .where(user_type_defaults.c.user_type_id == user_type_id, live(user_type_defaults))
            .values(removed_revision=revision)
        )
        if role_id is not None:
            await self._s.execute(
                user_type_defaults.insert().values(
                    user_type_id=user_type_id, role_id=role_id, added_revision=revision
                )
            )

    async def add(self, user_type: UserTypeRecord) -> None:
        await insert_unique(
            self._s,
            user_types.insert().values(
                id=user_type.id,
                org_id=user_type.org_id,
                name=user_type.name,
                description=user_type.description,
                created_at=user_type.created_at,
                updated_at=user_type.updated_at,
                revision=user_type.revision,
            ),
            AlreadyExistsError("a user type with this name exists in the org", field="name"),
        )
        await self._set_default(user_type.id, user_type.default_role_id, user_type.revision)

    async def get(self, user_type_id: uuid.UUID) -> UserTypeRecord | None:
        row = (
            await self._s.execute(
                select(user_types, _DEFAULT).where(
                    user_types.c.id == user_type_id, user_types.c.deleted_revision.is_(None)
                )
            )
        ).first()
        return None if row is None else _user_type(row)

    async def page(self, org_id: str, after: str, limit: int) -> list[UserTypeRecord]:
        rows = await self._s.execute(
            select(user_types, _DEFAULT)
            .where(
                user_types.c.org_id == org_id,
                user_types.c.deleted_revision.is_(None),
                user_types.c.name > after,
            )
            .order_by(user_types.c.name)
            .limit(limit)
        )
        return [_user_type(row) for row in rows]

    async def update(
        self,
        user_type: UserTypeRecord,
        *,
        name: str,
        description: str,
        default_role_id: uuid.UUID | None,
        revision: int,
        now: dt.datetime,
    ) -> UserTypeRecord:
        await insert_unique(
            self._s,
            update(user_types)
            .where(user_types.c.id == user_type.id)
            .values(name=name, description=description, updated_at=now, revision=revision),
            AlreadyExistsError("a user type with this name exists in the org", field="name"),
        )
        if default_role_id != user_type.default_role_id:
            await self._set_default(user_type.id, default_role_id, revision)
        return UserTypeRecord(
            id=user_type.id,
            org_id=user_type.org_id,
            name=name,
            description=description,
            default_role_id=default_role_id,
            created_at=user_type.created_at,
            updated_at=now,
            revision=revision,
        )

    async def delete(self, user_type: UserTypeRecord, revision: int) -> None:
        await self._s.execute(
            update(user_types)
            .where(user_types.c.id == user_type.id)
            .values(deleted_revision=revision)
        )
        await self._set_default(user_type.id, None, revision)

    async def users_count(self, user_type_id: uuid.UUID) -> int:
        found = await self._s.scalar(
            select(func.count()).where(
                user_type_members.c.user_type_id == user_type_id, live(user_type_members)
            )
        )
        return int(found or 0)

    async def of_user(self, org_id: str, user_id: str) -> uuid.UUID | None:
        found: uuid.UUID | None = await self._s.scalar(
            select(user_type_members.c.user_type_id).where(
                user_type_members.c.org_id == org_id,
                user_type_members.c.user_id == user_id,
                live(user_type_members),
            )
        )
        return found

    async def set_of_user(
        self, org_id: str, user_id: str, user_type_id: uuid.UUID | None, revision: int
    ) -> None:
        await self._s.execute(
            update(user_type_members)
            .where(
                user_type_members.c.org_id == org_id,
                user_type_members.c.user_id == user_id,
                live(user_type_members),
            )
            .values(removed_revision=revision)
        )
        if user_type_id is not None:
            await self._s.execute(
                user_type_members.insert().values(
                    org_id=org_id,
                    user_id=user_id,
                    user_type_id=user_type_id,
                    added_revision=revision,
                )
            )
