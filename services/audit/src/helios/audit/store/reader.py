"""Reading an org's stored log for verification and export: rows, time spans, checkpoints."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator, Mapping
from typing import Any, cast

from sqlalchemy import Row, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.audit.domain.checkpoint import Checkpoint
from helios.audit.domain.leaf import LEAF_FIELDS
from helios.audit.store.rows import leaf_record
from helios.audit.store.tables import audit_log, checkpoints, org_logs

__all__ = ["PAGE_SIZE", "PgLogReader"]

PAGE_SIZE = 5000

# Every column a leaf record is built from, its position and its stored hash; nothing else.
_ROW_COLUMNS = [
    *(audit_log.c[name] for name in LEAF_FIELDS if name != "index"),
    audit_log.c.org_seq,
    audit_log.c.leaf_hash,
]


def _checkpoint(row: Row[Any]) -> Checkpoint:
    return Checkpoint(
        org_id=row.org_id,
        tree_size=int(row.tree_size),
        root_hash=bytes(row.root_hash),
        sealed_at=row.sealed_at,
        previous_size=int(row.previous_size),
        previous_root_hash=bytes(row.previous_root_hash),
        key_id=row.key_id,
        signature=bytes(row.signature),
    )


class PgLogReader:
    """LogReader over the audit schema. Rows come in pages of `page_size` by a keyset cursor on
    (org_id, org_seq) (the unique index), each page its own short read: no transaction is held
    while the caller works, so verifying a large log never holds back appenders or vacuum. Rows
    appended meanwhile simply show up at the end."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, page_size: int = PAGE_SIZE
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self._sessions = sessions
        self._page_size = page_size

    async def rows(
        self, org_id: str, start: int = 0, stop: int | None = None
    ) -> AsyncGenerator[tuple[int, dict[str, Any], bytes], None]:
        """(stored index, leaf record, stored leaf hash) of the org's rows with
        start <= org_seq < stop, in org_seq order; the record's `index` is the stored org_seq."""
        cursor = start
        while stop is None or cursor < stop:
            statement = (
                select(*_ROW_COLUMNS)
                .where(audit_log.c.org_id == org_id, audit_log.c.org_seq >= cursor)
                .order_by(audit_log.c.org_seq)
                .limit(self._page_size)
            )
            if stop is not None:
                statement = statement.where(audit_log.c.org_seq < stop)
            async with self._sessions() as session, session.begin():
                page = (await session.execute(statement)).mappings().all()
            for row in page:
                index = int(row["org_seq"])
                record = leaf_record(cast("Mapping[str, Any]", row), index)
                yield index, record, bytes(row["leaf_hash"])
            if len(page) < self._page_size:
                return
            cursor = int(page[-1]["org_seq"]) + 1

    async def time_span(
        self, org_id: str, stop: int, since: dt.datetime | None, until: dt.datetime | None
    ) -> tuple[int, int] | None:
        """The first and last matching index, each found by walking the (org_id, org_seq) index
        from its end (no index on occurred_at: a range near either end of the log is found
        quickly, one in the middle costs a scan up to it)."""
        where = [audit_log.c.org_id == org_id, audit_log.c.org_seq < stop]
        if since is not None:
            where.append(audit_log.c.occurred_at >= since)
        if until is not None:
            where.append(audit_log.c.occurred_at < until)
        first = select(audit_log.c.org_seq).where(*where).order_by(audit_log.c.org_seq).limit(1)
        last = (
            select(audit_log.c.org_seq).where(*where).order_by(audit_log.c.org_seq.desc()).limit(1)
        )
        async with self._sessions() as session, session.begin():
            lo = await session.scalar(first)
            hi = None if lo is None else await session.scalar(last)
        return None if lo is None or hi is None else (int(lo), int(hi) + 1)

    async def stored(self, org_id: str, start: int, stop: int) -> int:
        statement = select(func.count()).where(
            audit_log.c.org_id == org_id,
            audit_log.c.org_seq >= start,
            audit_log.c.org_seq < stop,
        )
        async with self._sessions() as session, session.begin():
            return int(await session.scalar(statement) or 0)

    async def orgs(self) -> list[str]:
        """Every org with a log size or a checkpoint, in org id order."""
        statement = union(select(org_logs.c.org_id), select(checkpoints.c.org_id))
        async with self._sessions() as session, session.begin():
            return sorted(str(org) for org in await session.scalars(statement))

    async def size(self, org_id: str) -> int | None:
        """The log size the store records for the org (org_logs), None if it has none. Not
        signed: a hint for progress and for a cut tail no checkpoint covers yet."""
        async with self._sessions() as session, session.begin():
            size = await session.scalar(select(org_logs.c.size).where(org_logs.c.org_id == org_id))
        return None if size is None else int(size)

    async def checkpoints(self, org_id: str) -> list[Checkpoint]:
        """The org's stored checkpoints, by size (their signatures are not checked here)."""
        async with self._sessions() as session, session.begin():
            rows = await session.execute(
                select(checkpoints)
                .where(checkpoints.c.org_id == org_id)
                .order_by(checkpoints.c.tree_size)
            )
            return [_checkpoint(row) for row in rows]
