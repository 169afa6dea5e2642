"""Test helper: "this call produced exactly one audit event with these fields" (L1), any service."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.proto.audit.v1 import events_pb2

__all__ = ["AuditEvents"]


class AuditEvents:
    """The audit events a service enqueued in its outbox (schema `schema`) since the last look,
    read on the test's connection (so rolled-back test transactions are seen)."""

    def __init__(self, db: AsyncConnection, schema: str) -> None:
        if not schema.isidentifier():
            raise ValueError(f"not a schema name: {schema!r}")
        self._db = db
        self._schema = schema
        self._seen: set[Any] = set()

    async def _rows(self) -> dict[Any, tuple[str, bytes]]:
        rows = await self._db.execute(
            text(f'SELECT id, subject, payload FROM "{self._schema}".outbox')  # noqa: S608 - checked identifier
        )
        return {row.id: (row.subject, bytes(row.payload)) for row in rows}

    async def mark(self) -> None:
        """Forget what is there now: later calls see only newer events."""
        self._seen = set(await self._rows())

    async def new(self) -> list[events_pb2.AuditEvent]:
        """Audit events (subject `audit.*`) enqueued since the last look, in no set order."""
        rows = await self._rows()
        fresh = [row for key, row in rows.items() if key not in self._seen]
        self._seen = set(rows)
        return [events_pb2.AuditEvent.FromString(p) for s, p in fresh if s.startswith("audit.")]

    async def expect_none(self, what: str = "") -> None:
        """Assert that nothing was audited since the last look."""
        events = await self.new()
        assert events == [], f"{what}: unexpected audit events {[e.action for e in events]}"

    async def expect_one(
        self, action: str, *, diff: dict[str, Any] | None = None, **fields: Any
    ) -> events_pb2.AuditEvent:
        """Assert exactly one new audit event, of `action`, whose fields equal `fields` (proto
        field names, e.g. org_id=..., actor_id=...) and whose diff holds every key of `diff`
        with that value; returns it."""
        events = await self.new()
        assert [e.action for e in events] == [action], (
            f"expected one {action} audit event, got {[e.action for e in events]}"
        )
        (event,) = events
        for name, expected in fields.items():
            actual = getattr(event, name)
            assert actual == expected, f"{action}: {name} is {actual!r}, expected {expected!r}"
        recorded = json_format.MessageToDict(event.diff)
        for key, expected in (diff or {}).items():
            assert key in recorded, f"{action}: diff has no {key!r} (has {sorted(recorded)})"
            assert recorded[key] == expected, (
                f"{action}: diff[{key!r}] is {recorded[key]!r}, expected {expected!r}"
            )
        return event
