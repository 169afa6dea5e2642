"""What audit's use cases need from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from helios.audit.domain.events import EventQuery
from helios.proto.audit.v1 import audit_pb2, events_pb2

__all__ = ["AuditLog"]


class AuditLog(Protocol):
    """The append-only store of audit rows."""

    async def append(self, events: Sequence[tuple[events_pb2.AuditEvent, int]]) -> int:
        """Insert (event, stream sequence) pairs in one transaction, skipping event ids already
        stored (idempotent); returns how many rows were new."""
        ...

    async def dead_letter(self, subject: str, stream_seq: int, payload: bytes, reason: str) -> None:
        """Keep an unusable message (idempotent per stream sequence)."""
        ...

    async def query(self, query: EventQuery) -> list[tuple[int, audit_pb2.AuditRecord]]:
        """(log sequence, row) pairs matching the query, newest first, at most page_size."""
        ...

    async def after(
        self, query: EventQuery, after_seq: int, limit: int
    ) -> list[tuple[int, audit_pb2.AuditRecord]]:
        """(log sequence, row) pairs matching the query's filters with a sequence above
        `after_seq`, oldest first, at most `limit`; `page_size` and `before_seq` are ignored.
        One read of committed rows, no transaction held afterwards."""
        ...

    async def last_sequence(self) -> int:
        """The highest log sequence stored so far, 0 for an empty log."""
        ...
