"""Invocation rules (I3, I4): confirmation nonces, the server-rendered summary, state changes.

A dangerous invocation is parked with a random nonce (only its sha256 is kept) until the
delegating human confirms it with that nonce and the hash of the input they were shown; it then
moves PENDING_CONFIRMATION -> RUNNING exactly once. A pending invocation past its deadline is
EXPIRED; a rejected one never runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import math
import re
import secrets
import unicodedata
import uuid
from typing import Any

from jsonschema import Draft202012Validator

from helios.ai_broker.domain.delegation import API_KEY_SESSION_PREFIX
from helios.ai_broker.domain.hashing import canonical_json
from helios.ai_broker.domain.model import Invocation, InvocationState
from helios.kernel.errors import (
    AlreadyExistsError,
    DomainError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnavailableError,
)
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "MAX_SCHEMA_ERRORS",
    "MAX_SUMMARY_CHARS",
    "MAX_VALUE_CHARS",
    "TargetCallError",
    "confirmed",
    "error_for_target",
    "expired",
    "failed",
    "is_overdue",
    "new_confirmation",
    "rejected",
    "render_summary",
    "require_delegator",
    "succeeded",
    "validate_input",
]

MAX_VALUE_CHARS = 120
"""Longest text of one input value in a summary; longer ones are cut and marked."""
MAX_SUMMARY_CHARS = 1000
"""Longest summary; the rest is cut and marked."""

MAX_SCHEMA_ERRORS = 5
"""Schema violations listed in one refusal."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MISSING = "(not given)"
_CUT = "… (cut)"


class TargetCallError(Exception):
    """The target service refused or failed the call: `code` is a gRPC status code name
    (e.g. `PERMISSION_DENIED`), `message` its text, fit for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


_TARGET_ERRORS: dict[str, type[DomainError]] = {
    "INVALID_ARGUMENT": InvalidArgumentError,
    "OUT_OF_RANGE": InvalidArgumentError,
    "NOT_FOUND": NotFoundError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "FAILED_PRECONDITION": FailedPreconditionError,
    "ABORTED": FailedPreconditionError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError,
}


def error_for_target(invocation_id: uuid.UUID, code: str, message: str) -> DomainError:
    """The error an RPC answers with when the target failed `invocation_id` with `code`: the
    same class of status (anything unexpected, the broker's own credentials refused included,
    is UNAVAILABLE), naming the invocation."""
    kind = _TARGET_ERRORS.get(code, UnavailableError)
    return kind(f"invocation {invocation_id} failed: {code}: {message}")


def new_confirmation() -> tuple[str, bytes]:
    """A fresh confirmation nonce (256 random bits) and the sha256 under which it is kept."""
    nonce = secrets.token_urlsafe(32)
    return nonce, hashlib.sha256(nonce.encode()).digest()


def _clean(text: str) -> str:
    """`text` with control, format (bidi overrides), separator and unassigned characters shown
    as `\\u` escapes (four hex digits), so a value cannot reshape the summary a human reads."""
    return "".join(
        f"\\u{ord(ch):04x}"
        if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp")
        else ch
        for ch in text
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + _CUT


def _value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _clean(json.dumps(_cut(value, MAX_VALUE_CHARS), ensure_ascii=False))
    return _clean(_cut(canonical_json(value), MAX_VALUE_CHARS))


def render_summary(template: str, data: dict[str, Any]) -> str:
    """The confirmation summary: the action's template (the registering service's text) with
    each `{field}` replaced by that top-level input value, strings quoted and escaped,
    every value cut at MAX_VALUE_CHARS and the whole at MAX_SUMMARY_CHARS. Only the template
    and the input enter it, never text of the model."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return _value_text(data[name]) if name in data else _MISSING

    return _cut(_PLACEHOLDER.sub(value, template), MAX_SUMMARY_CHARS)


def validate_input(schema: dict[str, Any], data: dict[str, Any]) -> None:
    """Raise InvalidArgumentError (field `input`) listing the first MAX_SCHEMA_ERRORS ways in
    which `data` breaks the action's JSON Schema (draft 2020-12)."""
    errors = sorted(
        Draft202012Validator(schema).iter_errors(data), key=lambda e: list(map(str, e.path))
    )
    if errors:
        listed = "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '(input)'}: {e.message[:200]}"
            for e in errors[:MAX_SCHEMA_ERRORS]
        )
        raise InvalidArgumentError(
            f"input does not match the action's schema: {listed}", field="input"
        )


def require_delegator(principal: principal_pb2.Principal, user_id: str) -> None:
    """Raise PermissionDeniedError unless `principal` is the delegating person `user_id` in a
    user session of their own: never an AI (not even the one that asked), an API key or an
    impersonation (I3: no bypass of the human)."""
    if principal.actor_type == principal_pb2.ACTOR_TYPE_AI:
        raise PermissionDeniedError("an AI cannot decide on its own invocation; its person must")
    if principal.actor_type != principal_pb2.ACTOR_TYPE_USER or not principal.session_id:
        raise PermissionDeniedError("only a person in a user session can decide on an invocation")
    if principal.session_id.startswith(API_KEY_SESSION_PREFIX):
        raise PermissionDeniedError("an API key cannot decide on an invocation")
    if principal.impersonator_id:
        raise PermissionDeniedError("an invocation cannot be decided while impersonating")
    if principal.actor_id != user_id:
        raise PermissionDeniedError("only the person who delegated to the AI can decide")


def is_overdue(invocation: Invocation, now: dt.datetime) -> bool:
    """Whether a pending invocation has passed its confirmation deadline."""
    return (
        invocation.state is InvocationState.PENDING_CONFIRMATION
        and invocation.confirmation_expires_at is not None
        and now >= invocation.confirmation_expires_at
    )


def expired(invocation: Invocation, now: dt.datetime) -> Invocation:
    """The overdue pending invocation, now EXPIRED."""
    return dataclasses.replace(invocation, state=InvocationState.EXPIRED, completed_at=now)


def _require_pending(invocation: Invocation, now: dt.datetime, nonce: str) -> None:
    if invocation.state is not InvocationState.PENDING_CONFIRMATION:
        raise FailedPreconditionError(
            f"invocation is {invocation.state.value}, not pending confirmation"
        )
    if is_overdue(invocation, now):
        raise FailedPreconditionError("the confirmation has expired")
    offered = hashlib.sha256(nonce.encode()).digest()
    if not invocation.confirmation_hash or not hmac.compare_digest(
        offered, invocation.confirmation_hash
    ):
        raise PermissionDeniedError("confirmation_id does not match this invocation")


def confirmed(
    invocation: Invocation, *, nonce: str, input_hash: str, by: str, now: dt.datetime
) -> Invocation:
    """The pending invocation, confirmed by `by` and now RUNNING; raises FailedPreconditionError
    unless it is pending and within its deadline, PermissionDeniedError for a wrong nonce, and
    InvalidArgumentError when `input_hash` is not the parked input's hash (the human saw
    something else)."""
    _require_pending(invocation, now, nonce)
    if not hmac.compare_digest(input_hash.encode(), invocation.input_hash.encode()):
        raise InvalidArgumentError(
            "input_hash is not the hash of the parked input: nothing was run", field="input_hash"
        )
    return dataclasses.replace(invocation, state=InvocationState.RUNNING, decided_by=by)


def rejected(invocation: Invocation, *, nonce: str, by: str, now: dt.datetime) -> Invocation:
    """The pending invocation, rejected by `by` for good; same refusals as `confirmed`."""
    _require_pending(invocation, now, nonce)
    return dataclasses.replace(
        invocation, state=InvocationState.REJECTED, decided_by=by, completed_at=now
    )


def succeeded(
    invocation: Invocation, output: dict[str, Any], output_hash: str, now: dt.datetime
) -> Invocation:
    """The running invocation, finished with `output`."""
    return dataclasses.replace(
        invocation,
        state=InvocationState.SUCCEEDED,
        output=output,
        output_hash=output_hash,
        completed_at=now,
    )


def failed(invocation: Invocation, code: str, message: str, now: dt.datetime) -> Invocation:
    """The invocation, failed with gRPC status `code` and `message`."""
    return dataclasses.replace(
        invocation,
        state=InvocationState.FAILED,
        error_code=code,
        error_message=message[:1000],
        completed_at=now,
    )
