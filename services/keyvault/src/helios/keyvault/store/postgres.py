"""PostgreSQL implementation of keyvault's UnitOfWork and KeyTransaction ports."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.db import insert_unique
from helios.kernel.errors import AlreadyExistsError
from helios.kernel.unit_of_work import SqlUnitOfWork
from helios.keyvault.domain.model import KeyRecord, KeyVersionRecord
from helios.keyvault.ports import KeyTransaction
from helios.keyvault.store.tables import key_versions, keys

__all__ = ["postgres_unit_of_work"]


def _version(row: Row[Any]) -> KeyVersionRecord:
    return KeyVersionRecord(
        version=row.version,
        created_at=row.created_at,
        sealed_material=row.sealed_material,
        destroyed_at=row.destroyed_at,
        use_count=row.use_count,
        live_ciphertexts=row.live_ciphertexts,
        live_data_keys=row.live_data_keys,
    )


def _key(row: Row[Any], versions: list[KeyVersionRecord]) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        org_id=row.org_id,
        name=row.name,
        purpose=row.purpose,
        algorithm=row.algorithm,
        current_version=row.current_version,
        min_decryption_version=row.min_decryption_version,
        created_at=row.created_at,
        destroyed_at=row.destroyed_at,
        rotation_period=(
            dt.timedelta(seconds=row.rotation_period_seconds)
            if row.rotation_period_seconds
            else None
        ),
        next_rotation_at=row.next_rotation_at,
        versions=versions,
    )


class _Transaction:
    def __init__(
        self, session: AsyncSession, recorder: AuditRecorder, clock: Callable[[], dt.datetime]
    ) -> None:
        self._s = session
        self._recorder = recorder
        self._clock = clock

    async def _versions(self, key_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[KeyVersionRecord]]:
        rows = await self._s.execute(
            select(key_versions)
            .where(key_versions.c.key_id.in_(key_ids))
            .order_by(key_versions.c.key_id, key_versions.c.version)
        )
        out: dict[uuid.UUID, list[KeyVersionRecord]] = {key_id: [] for key_id in key_ids}
        for row in rows:
            out[row.key_id].append(_version(row))
        return out

    async def key(self, key_id: uuid.UUID, *, for_update: bool = False) -> KeyRecord | None:
        statement = select(keys).where(keys.c.id == key_id)
        if for_update:
            statement = statement.with_for_update()
        row = (await self._s.execute(statement)).first()
        if row is None:
            return None
        return _key(row, (await self._versions([key_id]))[key_id])

    async def keys(self, org_id: str, purpose: int, include_destroyed: bool) -> list[KeyRecord]:
        statement = select(keys).where(keys.c.org_id == org_id).order_by(keys.c.created_at)
        if purpose:
            statement = statement.where(keys.c.purpose == purpose)
        if not include_destroyed:
            statement = statement.where(keys.c.destroyed_at.is_(None))
        rows = (await self._s.execute(statement)).all()
        versions = await self._versions([row.id for row in rows])
        return [_key(row, versions[row.id]) for row in rows]

    async def add_key(self, key: KeyRecord) -> None:
        await insert_unique(
            self._s,
            keys.insert().values(
                id=key.id,
                org_id=key.org_id,
                name=key.name,
                purpose=key.purpose,
                algorithm=key.algorithm,
                current_version=key.current_version,
                min_decryption_version=key.min_decryption_version,
                created_at=key.created_at,
                rotation_period_seconds=(
                    int(key.rotation_period.total_seconds()) if key.rotation_period else None
                ),
                next_rotation_at=key.next_rotation_at,
            ),
            AlreadyExistsError("a key with this name exists in the org", field="name"),
        )
        for version in key.versions:
            await self._insert_version(key.id, version)

    async def _insert_version(self, key_id: uuid.UUID, version: KeyVersionRecord) -> None:
        await self._s.execute(
            key_versions.insert().values(
                key_id=key_id,
                version=version.version,
                sealed_material=version.sealed_material,
                created_at=version.created_at,
            )
        )

    async def add_version(
        self, key_id: uuid.UUID, version: KeyVersionRecord, next_rotation_at: dt.datetime | None
    ) -> None:
        await self._insert_version(key_id, version)
        await self._s.execute(
            update(keys)
            .where(keys.c.id == key_id)
            .values(current_version=version.version, next_rotation_at=next_rotation_at)
        )

    async def due_for_rotation(self, now: dt.datetime, limit: int) -> list[uuid.UUID]:
        rows = await self._s.execute(
            select(keys.c.id)
            .where(
                keys.c.destroyed_at.is_(None),
                keys.c.next_rotation_at.is_not(None),
                keys.c.next_rotation_at <= now,
            )
            .order_by(keys.c.next_rotation_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows.scalars())

    async def count_use(self, key_id: uuid.UUID, version: int, *, data_key: bool) -> None:
        live = key_versions.c.live_data_keys if data_key else key_versions.c.live_ciphertexts
        await self._s.execute(
            update(key_versions)
            .where(key_versions.c.key_id == key_id, key_versions.c.version == version)
            .values({key_versions.c.use_count: key_versions.c.use_count + 1, live: live + 1})
        )

    async def move_live(
        self, key_id: uuid.UUID, source: int, target: int, *, data_key: bool
    ) -> None:
        live = key_versions.c.live_data_keys if data_key else key_versions.c.live_ciphertexts
        where = key_versions.c.key_id == key_id
        await self._s.execute(
            update(key_versions)
            .where(where, key_versions.c.version == source, live > 0)
            .values({live: live - 1})
        )
        await self._s.execute(
            update(key_versions)
            .where(where, key_versions.c.version == target)
            .values({key_versions.c.use_count: key_versions.c.use_count + 1, live: live + 1})
        )

    async def set_min_decryption_version(self, key_id: uuid.UUID, version: int) -> None:
        await self._s.execute(
            update(keys).where(keys.c.id == key_id).values(min_decryption_version=version)
        )

    async def destroy_versions(
        self, key_id: uuid.UUID, versions: list[int], at: dt.datetime, *, whole_key: bool
    ) -> None:
        await self._s.execute(
            update(key_versions)
            .where(key_versions.c.key_id == key_id, key_versions.c.version.in_(versions))
            .values(sealed_material=None, destroyed_at=at)
        )
        if whole_key:
            await self._s.execute(update(keys).where(keys.c.id == key_id).values(destroyed_at=at))

    async def record(self, change: Change, ctx: CallContext) -> None:
        await self._recorder.record(self._s, change, ctx, self._clock())


def postgres_unit_of_work(
    sessions: async_sessionmaker[AsyncSession],
    recorder: AuditRecorder,
    clock: Callable[[], dt.datetime],
    on_commit: Callable[[], None] = lambda: None,
) -> SqlUnitOfWork[KeyTransaction]:
    """The UnitOfWork port over PostgreSQL; commits wake the outbox relay via `on_commit`."""
    return SqlUnitOfWork(sessions, lambda s: _Transaction(s, recorder, clock), on_commit)
