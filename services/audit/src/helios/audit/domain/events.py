"""Reading incoming audit events and the query filter, as pure rules."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from helios.audit.domain.leaf import canonical_json
from helios.kernel.errors import InvalidArgumentError
from helios.proto.audit.v1 import events_pb2

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "FIELD_LIMITS",
    "MAX_PAGE_SIZE",
    "EventQuery",
    "Incoming",
    "parse_event",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_MAX_CURSOR = 2**63 - 1  # the log sequence is a PostgreSQL bigint


# Column widths of audit_log: an event that does not fit is dead-lettered, not truncated.
FIELD_LIMITS = {
    "org_id": 64,
    "actor_id": 64,
    "session_id": 64,
    "impersonator_id": 64,
    "action": 200,
    "resource_type": 200,
    "resource_id": 200,
    "input_hash": 64,
    "output_hash": 64,
    "ip": 64,
    "user_agent": 512,
    "decision_id": 64,
    "trace_id": 32,
    "producer": 64,
}


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message as delivered by the stream."""

    subject: str
    data: bytes
    stream_seq: int


def parse_event(data: bytes) -> events_pb2.AuditEvent:
    """The AuditEvent in `data`; raises ValueError saying why it is unusable."""
    event = events_pb2.AuditEvent()
    try:
        event.ParseFromString(data)
    except Exception as exc:
        raise ValueError(f"not an AuditEvent: {exc}") from exc
    try:
        uuid.UUID(event.event_id)
    except ValueError as exc:
        raise ValueError("event_id is not a UUID") from exc
    if not event.action:
        raise ValueError("action is empty")
    if not event.HasField("occurred_at"):
        raise ValueError("occurred_at is missing")
    for name, limit in FIELD_LIMITS.items():
        value = getattr(event, name)
        if len(value) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
        if "\x00" in value:
            raise ValueError(f"{name} contains a NUL character (PostgreSQL text cannot hold it)")
    try:
        event.occurred_at.ToDatetime()
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"occurred_at is out of range: {exc}") from exc
    if _holds_nul(canonical_json(json_format.MessageToDict(event.diff))):
        raise ValueError("diff contains a NUL character (PostgreSQL JSONB cannot hold it)")
    return event


def _holds_nul(value: Any) -> bool:
    """Whether a NUL character is in any key or string of a JSON value."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


@dataclass(frozen=True, slots=True)
class EventQuery:
    """A validated ListEvents / WatchEvents filter; `before_seq` is the ListEvents cursor
    (0 = newest)."""

    actor_id: str = ""
    org_id: str = ""
    action: str = ""
    resource_type: str = ""
    resource_id: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    before_seq: int = 0

    @staticmethod
    def page(page_size: int, page_token: str) -> tuple[int, int]:
        """(page size, cursor) from the request; raises InvalidArgumentError when out of range."""
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgumentError(
                f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size"
            )
        cursor = 0
        if page_token:
            valid = page_token.isascii() and page_token.isdigit() and len(page_token) <= 19
            if not valid or int(page_token) > _MAX_CURSOR:
                raise InvalidArgumentError("page_token is not a valid cursor", field="page_token")
            cursor = int(page_token)
        return page_size or DEFAULT_PAGE_SIZE, cursor

    @staticmethod
    def resume_after(after_sequence: int) -> int:
        """The WatchEvents cursor (0 = from now on); raises InvalidArgumentError when it is not a
        log position."""
        if after_sequence > _MAX_CURSOR:
            raise InvalidArgumentError(
                "after_sequence is not a valid log position", field="after_sequence"
            )
        return after_sequence
