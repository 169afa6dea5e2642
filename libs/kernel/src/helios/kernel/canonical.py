"""Canonical JSON of protobuf messages with secret fields removed, and its sha256 for audit rows."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from helios.proto.options.v1 import options_pb2

__all__ = ["canonical_hash", "public_dict", "secret_field_names"]


def _is_secret(field: FieldDescriptor) -> bool:
    return bool(field.GetOptions().Extensions[options_pb2.secret])


def secret_field_names(descriptor: Descriptor) -> frozenset[str]:
    """JSON names of the fields of one message type marked `(helios.proto.options.v1.secret)`."""
    return frozenset(f.json_name for f in descriptor.fields if _is_secret(f))


def _strip(value: Any, descriptor: Descriptor | None) -> Any:
    if descriptor is None or not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key)
        if field is not None and _is_secret(field):
            continue
        sub = field.message_type if field is not None else None
        if sub is not None and sub.GetOptions().map_entry:
            if _is_secret(sub.fields_by_name["value"]):
                continue
            values = sub.fields_by_name["value"].message_type
            out[key] = {k: _strip(v, values) for k, v in item.items()}
        elif isinstance(item, list):
            out[key] = [_strip(element, sub) for element in item]
        else:
            out[key] = _strip(item, sub)
    return out


def public_dict(message: Message) -> dict[str, Any]:
    """The message as a JSON-ready dict, without fields marked secret (at any depth)."""
    raw = json_format.MessageToDict(message, preserving_proto_field_name=True)
    stripped: dict[str, Any] = _strip(raw, message.DESCRIPTOR)  # type: ignore[arg-type]
    return stripped


def canonical_hash(message: Message) -> str:
    """sha256 (hex) of the canonical JSON (sorted keys, no spaces) of the message's public fields.

    Secret fields never enter the hash, so an audit row cannot be used to test password guesses.
    """
    text = json.dumps(
        public_dict(message), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()
