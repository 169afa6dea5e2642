"""What audit's use cases need from the outside world."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from helios.audit.domain import merkle
from helios.audit.domain.checkpoint import Checkpoint
from helios.audit.domain.events import EventQuery
from helios.audit.domain.retention import PurgeRecord, Segment, SegmentScan, Tier
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.proto.audit.v1 import audit_pb2, events_pb2
from helios.proto.authz.v1 import authz_pb2
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "AuditLog",
    "CheckpointSigner",
    "ListScopes",
    "LogReader",
    "RetentionTransaction",
    "RetentionUnitOfWork",
    "TreeStore",
]


class AuditLog(Protocol):
    """The append-only store of audit rows."""

    async def append(self, events: Sequence[tuple[events_pb2.AuditEvent, int]]) -> int:
        """Insert (event, stream sequence) pairs in one transaction, skipping event ids already
        stored (idempotent); returns how many rows were new."""
        ...

    async def dead_letter(self, subject: str, stream_seq: int, payload: bytes, reason: str) -> None:
        """Keep an unusable message (idempotent per stream sequence)."""
        ...

    async def query(
        self, query: EventQuery, plan: authz_pb2.PlanListResponse | None = None
    ) -> list[tuple[int, audit_pb2.AuditRecord]]:
        """(log sequence, row) pairs matching the query (and authz's list plan, applied in
        SQL over org, actor), newest first, at most page_size."""
        ...

    async def after(
        self,
        query: EventQuery,
        after_seq: int,
        limit: int,
        plan: authz_pb2.PlanListResponse | None = None,
    ) -> list[tuple[int, audit_pb2.AuditRecord]]:
        """(log sequence, row) pairs matching the query's filters (and the plan) with a
        sequence above `after_seq`, oldest first, at most `limit`; `page_size` and `before_seq`
        are ignored. One read of committed rows, no transaction held afterwards."""
        ...

    async def last_sequence(self) -> int:
        """The highest log sequence stored so far, 0 for an empty log."""
        ...


class ListScopes(Protocol):
    """authz's answer to "which audit rows may this principal list" (Z5)."""

    async def plan(
        self, principal: principal_pb2.Principal, permission: str, resource_type: str
    ) -> authz_pb2.PlanListResponse:
        """The list plan for `permission` on `resource_type` (always-allowed, always-denied or
        a filter over org and owner); raises when authz cannot answer (never a guess)."""
        ...


class CheckpointSigner(Protocol):
    """Signs checkpoint notes with a key held elsewhere (keyvault)."""

    async def sign(self, note: bytes) -> tuple[bytes, str]:
        """The signature of `note` and the kid of the key version that made it."""
        ...

    async def public_keys(self) -> list[dict[str, str]]:
        """JWKs (with `kid`) of every version that may have signed a checkpoint."""
        ...


class TreeStore(Protocol):
    """Per-org Merkle logs: sizes, perfect-subtree hashes, leaf positions, checkpoints."""

    async def size(self, org_id: str) -> int:
        """The number of leaves in the org's log (0 if none)."""
        ...

    async def nodes(
        self, org_id: str, refs: Iterable[merkle.NodeRef]
    ) -> dict[merkle.NodeRef, bytes]:
        """Stored hashes of perfect subtrees (missing ones are left out)."""
        ...

    async def leaf_index(self, org_id: str, event_id: str) -> int | None:
        """The position of an event in its org's log, or None."""
        ...

    async def checkpoints(self, org_id: str) -> list[Checkpoint]:
        """The org's checkpoints, oldest first."""
        ...

    async def checkpoint(self, org_id: str, tree_size: int = 0) -> Checkpoint | None:
        """The org's checkpoint of `tree_size` leaves (0: its latest), or None."""
        ...

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a signed checkpoint (idempotent per org and size)."""
        ...

    async def unsealed_orgs(self, limit: int) -> list[str]:
        """Orgs whose log grew since their latest checkpoint."""
        ...

    def sealing(self, org_id: str) -> AbstractAsyncContextManager[TreeStore]:
        """Hold the org's seal lock for the block (one sealer per org across every replica;
        appends are not blocked) and yield a TreeStore whose reads and writes run in the
        lock's one transaction, committed when the block ends without an exception."""
        ...


class LogReader(Protocol):
    """Streams an org's stored rows in leaf order, for verification and export."""

    def rows(
        self, org_id: str, start: int = 0, stop: int | None = None
    ) -> AsyncGenerator[tuple[int, dict[str, Any], bytes], None]:
        """(stored index, leaf record, stored leaf hash) of rows with start <= index < stop,
        in index order, read in pages (never the whole log in memory); the caller may close
        the generator early."""
        ...

    async def time_span(
        self, org_id: str, stop: int, since: dt.datetime | None, until: dt.datetime | None
    ) -> tuple[int, int] | None:
        """(lo, hi): lo the first and hi - 1 the last index below `stop` of the org's rows with
        since <= occurred_at < until (None: unbounded on that side); None when no row is in
        that range. Rows between lo and hi may be outside it (indexes follow arrival, not
        occurred_at). One short read."""
        ...

    async def stored(self, org_id: str, start: int, stop: int) -> int:
        """How many of the org's rows with start <= index < stop are stored (fewer than
        stop - start when retention purged some). One short read."""
        ...

    async def orgs(self) -> list[str]:
        """Every org with a log."""
        ...


class RetentionTransaction(Protocol):
    """Retention reads and writes inside one database transaction, with their audit events."""

    async def set_tier(self, org_id: str, tier: Tier, at: dt.datetime) -> Tier | None:
        """Insert or replace the org's tier; returns the previous one (None if it had none)."""
        ...

    async def tiers(self) -> list[tuple[str, Tier]]:
        """Every org that has a tier, by org id."""
        ...

    async def scan(self, org_id: str, level: int) -> SegmentScan:
        """The org's log size, latest checkpoint size and the newest `occurred_at` of each
        segment of `level` below both that still has rows."""
        ...

    async def lock_purges(self, org_id: str) -> None:
        """Serialise purges of the org until this transaction ends (other purgers wait)."""
        ...

    async def segment_facts(
        self, org_id: str, segment: Segment
    ) -> tuple[int, dt.datetime | None, bytes | None]:
        """(rows still stored, newest `occurred_at` among them, hash of the Merkle node) of a
        segment; (0, None, ...) once it is purged."""
        ...

    async def add_purge(self, record: PurgeRecord) -> None:
        """Insert a signed purge record; AlreadyExistsError if the segment has one."""
        ...

    async def purge_segment(self, org_id: str, segment: Segment, cut: dt.datetime) -> int:
        """Delete the segment's rows through the database's one purge path, which needs a
        matching purge record added first in this transaction; returns the rows deleted.
        PermissionDeniedError or FailedPreconditionError with the database's reason when
        refused (the transaction is then unusable: the caller must roll it back)."""
        ...

    async def purges(self, org_id: str) -> list[PurgeRecord]:
        """The org's purge records, by first index."""
        ...

    async def record(self, change: Change, ctx: CallContext, at: dt.datetime) -> None:
        """Enqueue the audit event of `change`; it commits or rolls back with the transaction."""
        ...


class RetentionUnitOfWork(Protocol):
    """Opens a transaction: commits when the block ends normally, rolls back on an exception."""

    def __call__(self) -> AbstractAsyncContextManager[RetentionTransaction]: ...
