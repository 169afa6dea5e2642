"""Retention use cases (L2): set an org's tier; purge expired segments under signed records."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from helios.audit.domain.retention import (
    DEFAULT_SEGMENT_LEVEL,
    PurgeRecord,
    Segment,
    Tier,
    check_segment_level,
    cutoff,
    due_segments,
    parse_tier,
    purge_note,
)
from helios.audit.ports import CheckpointSigner, RetentionTransaction, RetentionUnitOfWork
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    DomainError,
    FailedPreconditionError,
    InvalidArgumentError,
    PermissionDeniedError,
)

__all__ = [
    "PURGE_INTERVAL_SECONDS",
    "TIER_CALLERS",
    "PurgeResult",
    "RetentionService",
    "ScheduledPurge",
]

log = logging.getLogger(__name__)

TIER_CALLERS: frozenset[str] = frozenset({"identity", "authz", "ai-broker", "keyvault"})
"""Service identities (mTLS) that may set tiers until the platform-root check through authz
lands: Helios back-end services only; never the gateway, whose calls are people's."""

PURGE_INTERVAL_SECONDS = 86400.0
"""A retention pass a day."""

_SYSTEM = CallContext(caller="audit")
_MAX_ORG_ID = 64


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """One purged segment: its signed record and how many rows were deleted."""

    record: PurgeRecord
    rows: int


class RetentionService:
    """Tiers per org, and the daily purge: per org with a tier, every whole segment of
    `2**segment_level` leaves covered by a checkpoint whose events all occurred before the
    tier's cutoff is deleted, one transaction per segment (the signed purge record, the delete
    and the audit event commit together or not at all); the segment's Merkle node is kept, so
    the rest of the log still reproduces every checkpoint root. Orgs without a tier are never
    purged."""

    def __init__(
        self,
        uow: RetentionUnitOfWork,
        signer: CheckpointSigner,
        *,
        segment_level: int = DEFAULT_SEGMENT_LEVEL,
        tier_callers: frozenset[str] = TIER_CALLERS,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._uow = uow
        self._signer = signer
        self._level = check_segment_level(segment_level)
        self._clock = clock
        self._tier_callers = tier_callers

    async def set_tier(self, ctx: CallContext, org_id: str, tier: Tier | str) -> Tier | None:
        """Set the org's retention tier (idempotent); returns the previous tier, None if it had
        none. Audited as `audit.retention.setTier`.

        Only Helios back-end services, by their mTLS identity (`tier_callers`), may call it for
        now; the platform-root check (`platform.audit.setRetention` through authz) comes with
        the authz wiring of this RPC. PermissionDeniedError for any other caller,
        InvalidArgumentError for an empty or too long org id or an unknown tier."""
        if ctx.caller not in self._tier_callers:
            raise PermissionDeniedError("only Helios services may set retention tiers")
        if not org_id or len(org_id) > _MAX_ORG_ID:
            raise InvalidArgumentError(
                f"org_id must be 1 to {_MAX_ORG_ID} characters", field="org_id"
            )
        chosen = tier if isinstance(tier, Tier) else parse_tier(tier)
        now = self._clock()
        async with self._uow() as tx:
            previous = await tx.set_tier(org_id, chosen, now)
            await tx.record(
                Change(
                    action="audit.retention.setTier",
                    resource_type="audit.retention",
                    resource_id=org_id,
                    org_id=org_id,
                    diff={"tier": {"from": previous.value if previous else "", "to": chosen.value}},
                ),
                ctx,
                now,
            )
        log.info(
            "retention tier set",
            extra={"org_id": org_id, "tier": chosen.value, "caller": ctx.caller},
        )
        return previous

    async def purges(self, org_id: str) -> list[PurgeRecord]:
        """The org's signed purge records, by first index (for verification and export)."""
        async with self._uow() as tx:
            return await tx.purges(org_id)

    async def purge_due(self, now: dt.datetime) -> list[PurgeResult]:
        """Purge every due segment of every org with a tier, as of `now`; returns what was
        purged. A refused segment (DomainError) is logged and skipped; any other failure
        (database, keyvault) is logged and ends that org's pass, to be retried on the next
        run. Safe to run on several replicas at once: purges of one org are serialised and a
        segment already purged is skipped."""
        async with self._uow() as tx:
            orgs = await tx.tiers()
        done: list[PurgeResult] = []
        for org_id, tier in orgs:
            done += await self._purge_org(org_id, tier, now)
        log.info(
            "retention pass done",
            extra={
                "orgs": len(orgs),
                "segments": len(done),
                "rows": sum(result.rows for result in done),
            },
        )
        return done

    async def _purge_org(self, org_id: str, tier: Tier, now: dt.datetime) -> list[PurgeResult]:
        cut = cutoff(tier, now)
        async with self._uow() as tx:
            scan = await tx.scan(org_id, self._level)
        due = due_segments(scan, cut, self._level)
        if due:
            log.info(
                "retention segments due",
                extra={"org_id": org_id, "tier": tier.value, "segments": len(due)},
            )
        done: list[PurgeResult] = []
        for segment in due:
            try:
                result = await self._purge_segment(org_id, tier, segment, cut, now)
            except DomainError as exc:
                log.warning(
                    "retention purge refused",
                    extra={"org_id": org_id, "first_index": segment.first, "reason": exc.message},
                )
                continue
            except Exception as exc:
                log.warning(
                    "retention purge failed; the org is retried on the next run",
                    extra={"org_id": org_id, "first_index": segment.first, "error": repr(exc)},
                )
                break
            if result is not None:
                done.append(result)
                log.info(
                    "retention segment purged",
                    extra={
                        "org_id": org_id,
                        "first_index": segment.first,
                        "end_index": segment.end,
                        "rows": result.rows,
                        "progress": f"{len(done)}/{len(due)}",
                    },
                )
        return done

    async def _purge_segment(
        self, org_id: str, tier: Tier, segment: Segment, cut: dt.datetime, now: dt.datetime
    ) -> PurgeResult | None:
        """One segment in one transaction: lock the org's purges, re-read the segment, sign its
        record, store it, delete the rows, enqueue the audit event. None if another purger got
        there first or the segment is no longer due."""
        async with self._uow() as tx:
            await tx.lock_purges(org_id)
            rows, newest, node = await tx.segment_facts(org_id, segment)
            if rows == 0 or newest is None or newest >= cut:
                return None
            if node is None:
                raise FailedPreconditionError(
                    f"Merkle node ({segment.level}, {segment.idx}) is missing"
                )
            record = await self._signed_record(org_id, tier, segment, node, newest, cut, now)
            await tx.add_purge(record)
            deleted = await tx.purge_segment(org_id, segment, cut)
            await self._audit(tx, record, deleted, now)
        return PurgeResult(record=record, rows=deleted)

    async def _signed_record(
        self,
        org_id: str,
        tier: Tier,
        segment: Segment,
        node: bytes,
        newest: dt.datetime,
        cut: dt.datetime,
        now: dt.datetime,
    ) -> PurgeRecord:
        note = purge_note(org_id, segment, node, newest, cut, tier, now)
        signature, key_id = await self._signer.sign(note)
        return PurgeRecord(
            org_id=org_id,
            first_index=segment.first,
            end_index=segment.end,
            level=segment.level,
            idx=segment.idx,
            range_hash=node,
            newest_occurred_at=newest,
            cutoff=cut,
            tier=tier,
            purged_at=now,
            key_id=key_id,
            signature=signature,
        )

    @staticmethod
    async def _audit(
        tx: RetentionTransaction, record: PurgeRecord, rows: int, now: dt.datetime
    ) -> None:
        await tx.record(
            Change(
                action="audit.retention.purge",
                resource_type="audit.logSegment",
                resource_id=f"{record.first_index}-{record.end_index}",
                org_id=record.org_id,
                diff={
                    "first_index": record.first_index,
                    "end_index": record.end_index,
                    "rows": rows,
                    "tier": record.tier.value,
                    "cutoff": record.cutoff.isoformat(),
                    "newest_occurred_at": record.newest_occurred_at.isoformat(),
                },
            ),
            _SYSTEM,
            now,
        )


class ScheduledPurge:
    """Runs `purge_due` once at start and then every `interval` seconds until stopped (a pass
    at start, so frequent restarts never postpone retention); a failed pass is logged and
    retried at the next tick. Every replica may run it: purges of one org are serialised and
    a purged segment is skipped."""

    def __init__(
        self,
        service: RetentionService,
        interval: float = PURGE_INTERVAL_SECONDS,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._service = service
        self._interval = interval
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        """The background task (GrpcService.add_background)."""
        while not stop.is_set():
            try:
                await self._service.purge_due(self._clock())
            except Exception as exc:
                log.warning("retention pass failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
