"""Audit's export use case: a time range of an org's sealed log as a streamed, resumable
bundle that verifies offline (L2)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, replace

from helios.audit.domain import merkle
from helios.audit.domain.access import authorize_log
from helios.audit.domain.bundle import event_line, gzip_member, header_line, trailer_lines
from helios.audit.domain.checkpoint import LogIntegrityError
from helios.audit.domain.export_cursor import ExportPosition, decode_cursor, encode_cursor
from helios.audit.ports import CheckpointSigner, LogReader, TreeStore
from helios.kernel.context import CallContext
from helios.kernel.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError

__all__ = ["CHUNK_BYTES", "CHUNK_EVENTS", "ExportChunk", "ExportService"]

log = logging.getLogger(__name__)

CHUNK_EVENTS = 1000
"""Event lines in one gzip member at most."""
CHUNK_BYTES = 2 * 1024 * 1024
"""Uncompressed event-line bytes after which a member is closed early (a message stays well
under gRPC's default 4 MiB limit however large the events are)."""


@dataclass(frozen=True, slots=True)
class ExportChunk:
    """One message of an export: a gzip member of the bundle, the cursor that resumes after it
    (empty in the last message: the bundle is complete), and progress in events."""

    chunk: bytes
    cursor: str
    events_done: int
    events_total: int


def _aware(value: dt.datetime | None, field: str) -> dt.datetime | None:
    if value is not None and value.utcoffset() is None:
        raise InvalidArgumentError(f"{field} needs a time zone", field=field)
    return value


class ExportService:
    """Streams export bundles (domain.bundle's format) of an org's log.

    Who may call: the rule of checkpoints (domain.access.authorize_log): a principal for its
    own org, a Helios service by its mTLS identity for any org.
    """

    def __init__(
        self,
        trees: TreeStore,
        reader: LogReader,
        signer: CheckpointSigner,
        *,
        chunk_events: int = CHUNK_EVENTS,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        if chunk_events < 1 or chunk_bytes < 1:
            raise ValueError("chunk_events and chunk_bytes must be positive")
        self._trees = trees
        self._reader = reader
        self._signer = signer
        self._chunk_events = chunk_events
        self._chunk_bytes = chunk_bytes

    async def export(
        self,
        ctx: CallContext,
        org_id: str,
        since: dt.datetime | None,
        until: dt.datetime | None,
        cursor: str = "",
    ) -> AsyncIterator[ExportChunk]:
        """The bundle of the org's sealed events with since <= occurred_at < until (None:
        unbounded on that side), as gzip members of up to CHUNK_EVENTS event lines: the first
        also holds the header, the last the trailers (the anchor checkpoint and the org's
        earlier ones, the signer's JWKs, the complement hashes from stored nodes).

        The slice: only sealed leaves are exported, the first `tree_size` of the org's latest
        checkpoint when the export starts. Leaves are in arrival order, not in `occurred_at`
        order, so the slice is contiguous: [lo, hi) with lo the first and hi - 1 the last index
        in the time range; the events between them are exported whatever their time (an
        offline verifier needs every leaf of the slice to rebuild the signed root).

        Resuming: every message but the last carries a cursor; called again with it (`since`
        and `until` are then ignored: the cursor holds the slice and its anchor), the export
        goes on with the next member, and the members of every call, concatenated, are one
        valid bundle. Rows are read in the reader's pages and no transaction is held between
        messages, so memory stays bounded and a slow client holds nothing back.

        Refusals: PermissionDeniedError (the access rule); InvalidArgumentError for since not
        before until, a naive time, or a cursor that is damaged, another org's or names no
        checkpoint; FailedPreconditionError when the org has no checkpoint yet ("seal a
        checkpoint first") or retention purged part of the slice; NotFoundError when no sealed
        event falls in the range. LogIntegrityError (an internal error) when stored nodes or
        rows contradict the log."""
        authorize_log(ctx, org_id)
        position = await self._position(org_id, since, until, cursor)
        lo, hi, size = position.lo, position.hi, position.tree_size
        missing = hi - position.next_index
        missing -= await self._reader.stored(org_id, position.next_index, hi)
        if missing:
            raise FailedPreconditionError(
                f"{missing} leaves of the slice [{lo}, {hi}) were purged by retention:"
                " export a later time range"
            )
        # Trailers first: a signer or node problem refuses the export before any chunk is sent.
        earlier = [c for c in await self._trees.checkpoints(org_id) if c.tree_size <= size]
        trailers = trailer_lines(
            earlier, await self._signer.public_keys(), await self._complement(org_id, lo, hi, size)
        )
        total = hi - lo
        index = position.next_index
        lines = [header_line(org_id, lo, hi, size)] if index == lo else []
        events = pending = 0
        async with aclosing(self._reader.rows(org_id, index, hi)) as rows:
            async for stored_index, record, _ in rows:
                if stored_index != index:
                    raise LogIntegrityError(
                        f"org {org_id!r}: leaf {index} is missing from the stored log"
                    )
                line = event_line(record)
                lines.append(line)
                index += 1
                events += 1
                pending += len(line)
                if index < hi and (events >= self._chunk_events or pending >= self._chunk_bytes):
                    next_cursor = encode_cursor(replace(position, next_index=index))
                    yield ExportChunk(gzip_member(lines), next_cursor, index - lo, total)
                    lines, events, pending = [], 0, 0
        if index != hi:
            raise LogIntegrityError(f"org {org_id!r}: leaves {index}..{hi - 1} are missing")
        log.info(
            "audit export complete",
            extra={"org_id": org_id, "lo": lo, "hi": hi, "size": size, "resumed": bool(cursor)},
        )
        yield ExportChunk(gzip_member([*lines, *trailers]), "", total, total)

    async def _position(
        self, org_id: str, since: dt.datetime | None, until: dt.datetime | None, cursor: str
    ) -> ExportPosition:
        """Where this call starts: the cursor's position (checked against the org's
        checkpoints), or a new export's slice of the latest checkpoint."""
        if cursor:
            position = decode_cursor(cursor, org_id)
            if await self._trees.checkpoint(org_id, position.tree_size) is None:
                raise InvalidArgumentError(
                    "the cursor names no checkpoint of this org's log", field="cursor"
                )
            return position
        since, until = _aware(since, "since"), _aware(until, "until")
        if since is not None and until is not None and since >= until:
            raise InvalidArgumentError("since must be before until", field="until")
        latest = await self._trees.checkpoint(org_id)
        if latest is None:
            raise FailedPreconditionError(
                "this org's log has no checkpoint yet: seal a checkpoint first"
            )
        span = await self._reader.time_span(org_id, latest.tree_size, since, until)
        if span is None:
            raise NotFoundError(
                f"no event among the {latest.tree_size} sealed leaves of this org's log"
                " occurred in the time range"
            )
        lo, hi = span
        return ExportPosition(org_id, lo, hi, latest.tree_size, lo)

    async def _complement(
        self, org_id: str, lo: int, hi: int, size: int
    ) -> list[tuple[int, int, bytes]]:
        """(lo, hi, MTH) of merkle.complement_plan(lo, hi, size), from one read of the stored
        perfect subtrees; LogIntegrityError when one is missing."""
        plan = merkle.complement_plan(lo, hi, size)
        refs = {ref for a, b in plan for ref in merkle.range_nodes(a, b)}
        nodes = await self._trees.nodes(org_id, refs)
        try:
            return [(a, b, merkle.range_hash(a, b, nodes)) for a, b in plan]
        except KeyError as exc:
            raise LogIntegrityError(f"org {org_id!r}: Merkle node {exc} is missing") from None
