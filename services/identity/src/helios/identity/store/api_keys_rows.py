"""PostgreSQL rows of API keys, mixed into identity's transaction."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from helios.identity.domain.api_keys import ApiKey
from helios.identity.store.tables import api_keys

__all__ = ["ApiKeyRows"]

_LIST_LIMIT = 1000


def _api_key(row: object) -> ApiKey:
    return ApiKey(
        id=row.id,  # type: ignore[attr-defined]
        org_id=row.org_id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        permissions=tuple(row.permissions),  # type: ignore[attr-defined]
        created_by=row.created_by,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        expires_at=row.expires_at,  # type: ignore[attr-defined]
        secret_hash=bytes(row.secret_hash),  # type: ignore[attr-defined]
        last_used_at=row.last_used_at,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
    )


class ApiKeyRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession

    async def add_api_key(self, key: ApiKey) -> None:
        await self._s.execute(
            api_keys.insert().values(
                id=key.id,
                org_id=key.org_id,
                name=key.name,
                permissions=list(key.permissions),
                created_by=key.created_by,
                secret_hash=key.secret_hash,
                created_at=key.created_at,
                expires_at=key.expires_at,
            )
        )

    async def api_key_by_id(self, key_id: uuid.UUID) -> ApiKey | None:
        row = (await self._s.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
        return _api_key(row) if row else None

    async def api_keys_of_org(
        self, org_id: uuid.UUID, created_by: uuid.UUID | None = None
    ) -> list[ApiKey]:
        query = select(api_keys).where(api_keys.c.org_id == org_id)
        if created_by is not None:
            query = query.where(api_keys.c.created_by == created_by)
        rows = await self._s.execute(
            query.order_by(api_keys.c.created_at.desc(), api_keys.c.id).limit(_LIST_LIMIT)
        )
        return [_api_key(row) for row in rows]

    async def revoke_api_key(self, key_id: uuid.UUID, at: dt.datetime) -> bool:
        result = await self._s.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(api_keys.c.id)
        )
        return result.first() is not None

    async def revoke_api_keys_of(
        self, org_id: uuid.UUID, user_id: uuid.UUID, at: dt.datetime
    ) -> list[uuid.UUID]:
        result = await self._s.execute(
            update(api_keys)
            .where(
                api_keys.c.org_id == org_id,
                api_keys.c.created_by == user_id,
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=at)
            .returning(api_keys.c.id)
        )
        return list(result.scalars())

    async def touch_api_key(self, key_id: uuid.UUID, at: dt.datetime, every: dt.timedelta) -> None:
        await self._s.execute(
            update(api_keys)
            .where(
                api_keys.c.id == key_id,
                or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at <= at - every),
            )
            .values(last_used_at=at)
        )
