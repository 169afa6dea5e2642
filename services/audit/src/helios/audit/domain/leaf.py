"""The bytes of one Merkle leaf: a stored audit row as canonical JSON (also one export line)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["LEAF_FIELDS", "canonical_json", "leaf_bytes", "timestamp"]

LEAF_FIELDS: tuple[str, ...] = (
    "index",
    "event_id",
    "org_id",
    "occurred_at",
    "recorded_at",
    "actor_type",
    "actor_id",
    "session_id",
    "impersonator_id",
    "action",
    "resource_type",
    "resource_id",
    "input_hash",
    "output_hash",
    "ip",
    "user_agent",
    "diff",
    "decision_id",
    "trace_id",
    "producer",
    "outcome",
)
"""Every field a leaf commits to; `index` is the row's position in its org's log."""


def timestamp(value: dt.datetime) -> str:
    """RFC 3339 in UTC with microseconds, the one spelling a leaf uses."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> Any:
    """`value` as it reads back from PostgreSQL JSONB: integral floats become ints (JSONB keeps
    numbers exact, so 5.0 and 1e300 come back as integers); NaN and infinities are refused
    with ValueError (JSON cannot carry them)."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("a JSON number cannot be NaN or infinite")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): canonical_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical_json(v) for v in value]
    return value


def leaf_bytes(record: Mapping[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8) of exactly LEAF_FIELDS; timestamps must
    already be strings (see timestamp()). Raises KeyError for a missing field and ValueError for
    an extra one, so a verifier never hashes something else than what was signed."""
    extra = set(record) - set(LEAF_FIELDS)
    if extra:
        raise ValueError(f"unexpected leaf fields {sorted(extra)}")
    canonical = {name: record[name] for name in LEAF_FIELDS}
    return json.dumps(
        canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
