"""What the example service declares in code: its permissions (registered with authz, Z2) and the
actions an AI may ask the broker to perform with them (registered with the broker, I5)."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from helios.proto.ai_broker.v1 import ai_broker_pb2
from helios.proto.authz.v1 import authz_pb2
from helios.proto.recruitment.v1 import recruitment_pb2

__all__ = [
    "CANDIDATE_LIST",
    "CANDIDATE_TYPE",
    "OFFER_SEND",
    "RECRUITMENT_ACTIONS",
    "RECRUITMENT_PERMISSIONS",
]

CANDIDATE_LIST = "recruitment.candidate.list"
OFFER_SEND = "recruitment.offer.send"
CANDIDATE_TYPE = "recruitment.candidate"
_SCOPES = (authz_pb2.SCOPE_OWN, authz_pb2.SCOPE_TEAM, authz_pb2.SCOPE_ANY)
_SERVICE = recruitment_pb2.DESCRIPTOR.services_by_name["RecruitmentService"].full_name

RECRUITMENT_PERMISSIONS: tuple[authz_pb2.PermissionDefinition, ...] = (
    authz_pb2.PermissionDefinition(
        key=CANDIDATE_LIST, description="See candidates", allowed_scopes=_SCOPES
    ),
    authz_pb2.PermissionDefinition(
        key=OFFER_SEND,
        description="Send a job offer to a candidate",
        dangerous=True,
        allowed_scopes=_SCOPES,
    ),
)
"""The keys the service's RPCs require, with the dangerous flags their options declare."""


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


RECRUITMENT_ACTIONS: tuple[ai_broker_pb2.ActionDefinition, ...] = (
    ai_broker_pb2.ActionDefinition(
        name=CANDIDATE_LIST,
        description="List the candidates the user can see",
        permission=CANDIDATE_LIST,
        input_schema=_struct({"type": "object", "properties": {}, "additionalProperties": False}),
        target_method=f"/{_SERVICE}/ListCandidates",
        ai_allowed=True,
        summary_template="List the candidates you can see",
    ),
    ai_broker_pb2.ActionDefinition(
        name=OFFER_SEND,
        description="Send a job offer to a candidate (an outbound message: dangerous, D1)",
        permission=OFFER_SEND,
        input_schema=_struct(
            {
                "type": "object",
                "properties": {
                    "candidate_id": {"type": "string", "minLength": 1, "maxLength": 64},
                    "salary": {"type": "integer", "exclusiveMinimum": 0},
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                },
                "required": ["candidate_id", "salary", "currency"],
                "additionalProperties": False,
            }
        ),
        target_method=f"/{_SERVICE}/SendOffer",
        ai_allowed=True,
        summary_template="Send an offer of {salary} {currency} to candidate {candidate_id}",
    ),
)
"""The service's full action set, registered with the broker at every start."""
