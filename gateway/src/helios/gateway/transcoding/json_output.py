"""Response messages as JSON: proto field names, every field present, enums as names."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

__all__ = ["to_json"]


def to_json(message: Message) -> dict[str, Any]:
    """The proto3 JSON form the OpenAPI document describes (secrets meant for the caller, such
    as a new API key shown once, are included: the gateway never logs bodies)."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
