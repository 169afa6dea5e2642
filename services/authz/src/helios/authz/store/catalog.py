"""The permission catalog in PostgreSQL."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from helios.authz.domain.model import RegisteredPermission
from helios.authz.store.tables import permissions
from helios.authz_rules.permissions import PermissionKey, PermissionSpec, Scope, parse_key

__all__ = ["PgCatalog"]


def _permission(row: Row[Any]) -> RegisteredPermission:
    spec = PermissionSpec(
        parse_key(row.key),
        row.description,
        row.dangerous,
        frozenset(Scope(s) for s in row.allowed_scopes),
    )
    return RegisteredPermission(spec, row.registered_by)


class PgCatalog:
    """CatalogStore over `authz.permissions`."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

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
