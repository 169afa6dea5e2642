"""Canonical JSON and its sha256 (I4): the input and output hashes anyone can recompute."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "json_hash", "whole_numbers"]

_EXACT_INTEGERS = 2**53
"""Doubles below this represent every whole number exactly."""


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 as is: one text per JSON value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def json_hash(value: Any) -> str:
    """Hex sha256 of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def whole_numbers(value: Any) -> Any:
    """A JSON value with every whole number an int (a google.protobuf.Struct holds numbers as
    doubles: 3.0 becomes 3), so that its canonical JSON, and hash, is the one a client computes
    from the JSON it sent or received."""
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_INTEGERS:
        return int(value)
    return value
