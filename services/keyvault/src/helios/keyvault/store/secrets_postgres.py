"""PostgreSQL implementation of the platform-secrets port (SecretUnitOfWork / SecretTransaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.db import insert_unique
from helios.kernel.errors import FailedPreconditionError
from helios.kernel.unit_of_work import SqlUnitOfWork
from helios.keyvault.secrets_store import SecretInfo, SecretTransaction, StoredSecret
from helios.keyvault.store.secret_tables import secrets

__all__ = ["postgres_secret_unit_of_work"]


class _SecretTransaction:
    def __init__(
        self, session: AsyncSession, recorder: AuditRecorder, clock: Callable[[], dt.datetime]
    ) -> None:
        self._s = session
        self._recorder = recorder
        self._clock = clock

    async def latest_version(self, name: str, *, lock: bool = False) -> int:
        if lock:
            # A transaction-scoped advisory lock per name: it also covers a name with no row yet
            # (a row lock could not), so concurrent check-and-set writers queue up here.
            await self._s.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"keyvault.secret:{name}"},
            )
        latest = await self._s.scalar(
            select(func.max(secrets.c.version)).where(secrets.c.name == name)
        )
        return int(latest or 0)

    async def add(self, secret: StoredSecret) -> None:
        await insert_unique(
            self._s,
            secrets.insert().values(
                name=secret.name,
                version=secret.version,
                sealed_value=secret.sealed_value,
                created_at=secret.created_at,
            ),
            FailedPreconditionError("this secret version was written concurrently; read and retry"),
        )

    async def get(self, name: str, version: int) -> StoredSecret | None:
        statement = select(secrets).where(secrets.c.name == name)
        if version:
            statement = statement.where(secrets.c.version == version)
        else:
            statement = statement.order_by(secrets.c.version.desc()).limit(1)
        row = (await self._s.execute(statement)).first()
        if row is None:
            return None
        return StoredSecret(
            name=row.name,
            version=row.version,
            sealed_value=row.sealed_value,
            created_at=row.created_at,
        )

    async def page(self, prefix: str, after: str, limit: int) -> list[SecretInfo]:
        latest = select(secrets.c.name, func.max(secrets.c.version).label("version")).group_by(
            secrets.c.name
        )
        if prefix:
            latest = latest.where(secrets.c.name.startswith(prefix, autoescape=True))
        if after:
            latest = latest.where(secrets.c.name > after)
        current = latest.subquery("latest")
        first = secrets.alias("first")
        last = secrets.alias("last")
        rows = await self._s.execute(
            select(
                current.c.name,
                current.c.version,
                first.c.created_at.label("created_at"),
                last.c.created_at.label("updated_at"),
            )
            .join(first, and_(first.c.name == current.c.name, first.c.version == 1))
            .join(last, and_(last.c.name == current.c.name, last.c.version == current.c.version))
            .order_by(current.c.name)
            .limit(limit)
        )
        return [
            SecretInfo(
                name=row.name,
                current_version=row.version,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in rows
        ]

    async def record(self, change: Change, ctx: CallContext) -> None:
        await self._recorder.record(self._s, change, ctx, self._clock())


def postgres_secret_unit_of_work(
    sessions: async_sessionmaker[AsyncSession],
    recorder: AuditRecorder,
    clock: Callable[[], dt.datetime],
    on_commit: Callable[[], None] = lambda: None,
) -> SqlUnitOfWork[SecretTransaction]:
    """The SecretUnitOfWork port over PostgreSQL; commits wake the outbox relay via `on_commit`."""
    return SqlUnitOfWork(sessions, lambda s: _SecretTransaction(s, recorder, clock), on_commit)
