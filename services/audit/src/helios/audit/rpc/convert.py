"""Audit's domain objects as their proto messages."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from google.protobuf import timestamp_pb2

from helios.audit.domain.checkpoint import Checkpoint
from helios.audit.domain.retention import Tier
from helios.audit.exporting import ExportChunk
from helios.kernel.errors import InvalidArgumentError
from helios.proto.audit.v1 import audit_pb2

__all__ = [
    "checkpoint_to_proto",
    "export_chunk_to_proto",
    "optional_time",
    "tier_from_proto",
]


def checkpoint_to_proto(checkpoint: Checkpoint) -> audit_pb2.Checkpoint:
    """Every field the signature covers, so a client can check it with the keyvault JWK."""
    message = audit_pb2.Checkpoint(
        org_id=checkpoint.org_id,
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash,
        previous_size=checkpoint.previous_size,
        previous_root_hash=checkpoint.previous_root_hash,
        key_id=checkpoint.key_id,
        signature=checkpoint.signature,
    )
    message.sealed_at.FromDatetime(checkpoint.sealed_at)
    return message


def export_chunk_to_proto(chunk: ExportChunk) -> audit_pb2.ExportEventsResponse:
    """One message of the ExportEvents stream."""
    return audit_pb2.ExportEventsResponse(
        chunk=chunk.chunk,
        cursor=chunk.cursor,
        events_done=chunk.events_done,
        events_total=chunk.events_total,
    )


def optional_time(
    message: audit_pb2.ExportEventsRequest, field: Literal["since", "until"]
) -> dt.datetime | None:
    """The timestamp `field` of the request in UTC, None when it is not set;
    InvalidArgumentError (naming the field) for one outside what a timestamp can hold."""
    if not message.HasField(field):
        return None
    value: timestamp_pb2.Timestamp = getattr(message, field)
    try:
        return value.ToDatetime(dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidArgumentError(f"{field} is not a valid timestamp", field=field) from None


_TIERS = {
    audit_pb2.RETENTION_TIER_FREE: Tier.FREE,
    audit_pb2.RETENTION_TIER_STARTER: Tier.STARTER,
    audit_pb2.RETENTION_TIER_BUSINESS: Tier.BUSINESS,
    audit_pb2.RETENTION_TIER_ENTERPRISE: Tier.ENTERPRISE,
}


def tier_from_proto(value: audit_pb2.RetentionTier.ValueType) -> Tier | str:
    """The tier, or "" for UNSPECIFIED or an unknown number (set_tier refuses it on `tier`)."""
    return _TIERS.get(value, "")
