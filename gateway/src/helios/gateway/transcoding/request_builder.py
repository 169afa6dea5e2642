"""Builds the request proto of a transcoded call from path variables, query and JSON body."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from helios.gateway.errors import EdgeError

__all__ = ["build_request"]

_SCALAR_INT = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_FIXED32,
}


def _field(descriptor: Descriptor, path: str) -> FieldDescriptor:
    current: Descriptor | None = descriptor
    found: FieldDescriptor | None = None
    for name in path.split("."):
        if current is None:
            break
        found = current.fields_by_name.get(name)
        if found is None:
            break
        current = found.message_type
    if found is None or found.name != path.split(".")[-1]:
        raise EdgeError(400, "INVALID_ARGUMENT", f"unknown parameter {path!r}")
    return found


def _typed(field: FieldDescriptor, raw: str) -> Any:
    """A query or path string as the JSON value proto3 JSON parsing expects for the field."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        if raw not in ("true", "false"):
            raise EdgeError(400, "INVALID_ARGUMENT", f"{field.name} must be true or false")
        return raw == "true"
    if field.type in _SCALAR_INT:
        try:
            return int(raw)
        except ValueError:
            raise EdgeError(400, "INVALID_ARGUMENT", f"{field.name} must be an integer") from None
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        try:
            return float(raw)
        except ValueError:
            raise EdgeError(400, "INVALID_ARGUMENT", f"{field.name} must be a number") from None
    return raw


def _assign(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for name in parents:
        target = target.setdefault(name, {})
    target[leaf] = value


def _parse_into(message: Message, document: dict[str, Any]) -> None:
    try:
        json_format.ParseDict(document, message)
    except json_format.ParseError as exc:
        raise EdgeError(400, "INVALID_ARGUMENT", f"invalid request: {exc}") from None


def build_request(
    message: Message,
    body_rule: str,
    body: Any,
    path_values: Mapping[str, str],
    query: Sequence[tuple[str, str]],
) -> Message:
    """Fill `message`: the body per the rule (`*` = whole message, a field name = that field, empty
    = none allowed), then path variables, then query parameters for fields not bound otherwise.
    Raises EdgeError (400) for unknown parameters, wrong types or a body where none is allowed."""
    descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]
    document: dict[str, Any] = {}
    if body_rule == "*":
        if not isinstance(body, dict):
            raise EdgeError(400, "INVALID_ARGUMENT", "body must be a JSON object")
        document = dict(body)
    elif body_rule:
        _field(descriptor, body_rule)
        if body is not None:
            document[body_rule] = body
    elif body is not None:
        raise EdgeError(400, "INVALID_ARGUMENT", "this route takes no request body")
    for path, raw in path_values.items():
        _assign(document, path, _typed(_field(descriptor, path), raw))
    bound = set(path_values)
    if body_rule != "*":
        repeated: dict[str, list[Any]] = {}
        for name, raw in query:
            if name in bound or (body_rule and name.split(".")[0] == body_rule):
                raise EdgeError(400, "INVALID_ARGUMENT", f"{name} cannot be set in the query")
            field = _field(descriptor, name)
            if field.is_repeated:
                repeated.setdefault(name, []).append(_typed(field, raw))
            elif field.message_type is not None and not field.message_type.full_name.startswith(
                "google.protobuf."
            ):
                raise EdgeError(400, "INVALID_ARGUMENT", f"{name} is a message; set its fields")
            else:
                _assign(document, name, _typed(field, raw))
        for name, values in repeated.items():
            _assign(document, name, values)
    elif query:
        raise EdgeError(400, "INVALID_ARGUMENT", "this route takes its input from the body only")
    _parse_into(message, document)
    return message
