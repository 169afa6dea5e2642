"""A stored audit row as its Merkle leaf record (the same mapping at insert and at verify)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helios.audit.domain.leaf import LEAF_FIELDS, timestamp

__all__ = ["leaf_record"]

_COPIED = tuple(
    f for f in LEAF_FIELDS if f not in {"index", "event_id", "occurred_at", "recorded_at"}
)


def leaf_record(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The leaf record of `row` (an audit_log row or the values about to be inserted) at
    position `index` of its org's log."""
    record: dict[str, Any] = {name: row[name] for name in _COPIED}
    record.update(
        index=index,
        event_id=str(row["event_id"]),
        occurred_at=timestamp(row["occurred_at"]),
        recorded_at=timestamp(row["recorded_at"]),
        outcome=int(row["outcome"]),
    )
    return record
