"""Retention in PostgreSQL: org tiers, segment scans, purge records and the purge function call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.audit.domain.retention import PurgeRecord, Segment, SegmentScan, Tier
from helios.audit.ports import RetentionTransaction
from helios.audit.store.tables import (
    audit_log,
    checkpoints,
    merkle_nodes,
    org_logs,
    org_retention,
    purges,
)
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.db import insert_unique
from helios.kernel.errors import (
    AlreadyExistsError,
    DomainError,
    FailedPreconditionError,
    InvalidArgumentError,
    PermissionDeniedError,
)
from helios.kernel.unit_of_work import SqlUnitOfWork

__all__ = ["postgres_retention"]

# SQLSTATEs audit.purge_segment raises with (migration 0003) and the refusal each one is.
_REFUSALS: dict[str, type[DomainError]] = {
    "42501": PermissionDeniedError,  # the tier (or the cutoff) does not allow it
    "55000": FailedPreconditionError,  # the log is not in a state that allows it
    "22023": InvalidArgumentError,  # no such segment
}
_PURGE = text("SELECT audit.purge_segment(:org, :level, :idx, :cutoff)")
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('helios.audit.purge'), hashtext(:org))")


def _record(row: Any) -> PurgeRecord:
    return PurgeRecord(
        org_id=row.org_id,
        first_index=int(row.first_index),
        end_index=int(row.end_index),
        level=int(row.level),
        idx=int(row.idx),
        range_hash=bytes(row.range_hash),
        newest_occurred_at=row.newest_occurred_at,
        cutoff=row.cutoff,
        tier=Tier(row.tier),
        purged_at=row.purged_at,
        key_id=row.key_id,
        signature=bytes(row.signature),
    )


class _Transaction:
    def __init__(self, session: AsyncSession, recorder: AuditRecorder) -> None:
        self._s = session
        self._recorder = recorder

    async def set_tier(self, org_id: str, tier: Tier, at: dt.datetime) -> Tier | None:
        previous = await self._s.scalar(
            select(org_retention.c.tier).where(org_retention.c.org_id == org_id).with_for_update()
        )
        await self._s.execute(
            insert(org_retention)
            .values(org_id=org_id, tier=tier.value, updated_at=at)
            .on_conflict_do_update(
                index_elements=["org_id"], set_={"tier": tier.value, "updated_at": at}
            )
        )
        return Tier(previous) if previous is not None else None

    async def tiers(self) -> list[tuple[str, Tier]]:
        rows = await self._s.execute(
            select(org_retention.c.org_id, org_retention.c.tier).order_by(org_retention.c.org_id)
        )
        return [(org_id, Tier(tier)) for org_id, tier in rows]

    async def scan(self, org_id: str, level: int) -> SegmentScan:
        size = await self._s.scalar(select(org_logs.c.size).where(org_logs.c.org_id == org_id))
        covered = await self._s.scalar(
            select(func.max(checkpoints.c.tree_size)).where(checkpoints.c.org_id == org_id)
        )
        log_size, checkpoint_size = int(size or 0), int(covered or 0)
        limit = (min(log_size, checkpoint_size) >> level) << level
        newest: dict[int, dt.datetime] = {}
        if limit:
            segment = audit_log.c.org_seq.op(">>")(literal_column(str(int(level))))
            rows = await self._s.execute(
                select(segment.label("segment"), func.max(audit_log.c.occurred_at))
                .where(audit_log.c.org_id == org_id, audit_log.c.org_seq < limit)
                .group_by(literal_column("segment"))
            )
            newest = {int(idx): at for idx, at in rows}
        return SegmentScan(log_size=log_size, checkpoint_size=checkpoint_size, newest=newest)

    async def lock_purges(self, org_id: str) -> None:
        await self._s.execute(_LOCK, {"org": org_id})

    async def segment_facts(
        self, org_id: str, segment: Segment
    ) -> tuple[int, dt.datetime | None, bytes | None]:
        count, newest = (
            await self._s.execute(
                select(func.count(), func.max(audit_log.c.occurred_at)).where(
                    audit_log.c.org_id == org_id,
                    audit_log.c.org_seq >= segment.first,
                    audit_log.c.org_seq < segment.end,
                )
            )
        ).one()
        node = await self._s.scalar(
            select(merkle_nodes.c.hash).where(
                merkle_nodes.c.org_id == org_id,
                merkle_nodes.c.level == segment.level,
                merkle_nodes.c.idx == segment.idx,
            )
        )
        return int(count), newest, bytes(node) if node is not None else None

    async def add_purge(self, record: PurgeRecord) -> None:
        await insert_unique(
            self._s,
            purges.insert().values(
                org_id=record.org_id,
                first_index=record.first_index,
                end_index=record.end_index,
                level=record.level,
                idx=record.idx,
                range_hash=record.range_hash,
                newest_occurred_at=record.newest_occurred_at,
                cutoff=record.cutoff,
                tier=record.tier.value,
                purged_at=record.purged_at,
                key_id=record.key_id,
                signature=record.signature,
            ),
            AlreadyExistsError(
                f"leaves [{record.first_index}, {record.end_index}) are already purged"
            ),
        )

    async def purge_segment(self, org_id: str, segment: Segment, cut: dt.datetime) -> int:
        params = {"org": org_id, "level": segment.level, "idx": segment.idx, "cutoff": cut}
        try:
            deleted = await self._s.scalar(_PURGE, params)
        except DBAPIError as exc:
            refusal = _REFUSALS.get(getattr(exc.orig, "sqlstate", None) or "")
            if refusal is None:
                raise
            diag = getattr(exc.orig, "diag", None)
            message = getattr(diag, "message_primary", None) or "purge refused"
            raise refusal(message) from None
        return int(deleted or 0)

    async def purges(self, org_id: str) -> list[PurgeRecord]:
        rows = await self._s.execute(
            select(purges).where(purges.c.org_id == org_id).order_by(purges.c.first_index)
        )
        return [_record(row) for row in rows]

    async def record(self, change: Change, ctx: CallContext, at: dt.datetime) -> None:
        await self._recorder.record(self._s, change, ctx, at)


def postgres_retention(
    sessions: async_sessionmaker[AsyncSession],
    recorder: AuditRecorder,
    on_commit: Callable[[], None] = lambda: None,
) -> SqlUnitOfWork[RetentionTransaction]:
    """The RetentionUnitOfWork port over PostgreSQL; commits that enqueued audit events wake
    the outbox relay via `on_commit`."""
    return SqlUnitOfWork(sessions, lambda s: _Transaction(s, recorder), on_commit)
