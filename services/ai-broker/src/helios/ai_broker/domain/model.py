"""AI sessions, registered actions and invocations as the use cases see them (I1-I5)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = ["Action", "AiSession", "Invocation", "InvocationState"]


@dataclass(frozen=True, slots=True)
class AiSession:
    """A delegation from one user to an AI (I1); only the sha256 of its token is stored.
    `permissions` narrows the user's rights (keys, optionally with `:own` / `:team` / `:any`);
    empty means all of them (never more, I2)."""

    id: uuid.UUID
    org_id: str
    user_id: str
    purpose: str
    token_hash: bytes
    token_prefix: str
    permissions: tuple[str, ...]
    rate_limit_per_minute: int
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None = None
    revoked_by: str = ""
    last_used_at: dt.datetime | None = None

    def is_active(self, now: dt.datetime) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class Action:
    """A registered action (I5): the only things an AI can make the broker do."""

    name: str
    service: str
    description: str
    permission: str
    input_schema: dict[str, Any]
    target_method: str
    ai_allowed: bool
    summary_template: str
    updated_at: dt.datetime


class InvocationState(enum.StrEnum):
    """Life-cycle of an invocation (stored as its value)."""

    PENDING_CONFIRMATION = "pending_confirmation"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Invocation:
    """One AI call of a registered action, as recorded (I3, I4). A dangerous one is parked with
    a confirmation nonce (only its hash stored) bound to the input hash, action, AI session and
    expiry."""

    id: uuid.UUID
    org_id: str
    ai_session_id: uuid.UUID
    user_id: str
    action: str
    state: InvocationState
    input: dict[str, Any]
    input_hash: str
    dangerous: bool
    decision_id: str
    created_at: dt.datetime
    output: dict[str, Any] | None = None
    output_hash: str = ""
    confirmation_hash: bytes = b""
    confirmation_expires_at: dt.datetime | None = None
    summary: str = ""
    system_prompt_hash: str = ""
    step_up_required: bool = False
    decided_by: str = ""
    error_code: str = ""
    error_message: str = ""
    completed_at: dt.datetime | None = None
