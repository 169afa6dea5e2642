"""What a state change did, in audit terms: use cases build it, the outbox adapter records it."""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import Message

from helios.proto.audit.v1 import events_pb2

__all__ = ["Change"]


@dataclass(frozen=True, slots=True)
class Change:
    """One audited action; the actor comes from the call context unless `actor_id` is given."""

    action: str
    resource_type: str
    resource_id: str = ""
    org_id: str = ""
    actor_id: str = ""
    outcome: events_pb2.AuditOutcome.ValueType = events_pb2.AUDIT_OUTCOME_SUCCESS
    request: Message | None = None
    response: Message | None = None
    diff: dict[str, object] = field(default_factory=dict)
    decision_id: str = ""
    # Hashes computed by the caller (hex sha256 of what it defines as the input and output, e.g.
    # an AI invocation's canonical JSON, I4); they win over the hashes of `request` / `response`.
    input_hash: str = ""
    output_hash: str = ""
