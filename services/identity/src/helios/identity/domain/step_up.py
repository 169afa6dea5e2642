"""What a step-up may be asked for, how long it lasts, and the checks of a request for one."""

from __future__ import annotations

import datetime as dt
import uuid

from helios.kernel.errors import InvalidArgumentError

__all__ = ["STEP_UP_PURPOSES", "STEP_UP_TTL", "validate_step_up"]

STEP_UP_TTL = dt.timedelta(minutes=5)
"""A step-up token is good for one step within five minutes of the code."""

STEP_UP_PURPOSES: frozenset[str] = frozenset({"ai.invocation.confirm"})
"""The steps that take a step-up token; each binds it to one object, a UUID."""


def validate_step_up(purpose: str, binding: str) -> str:
    """The binding in canonical form; InvalidArgumentError for an unknown purpose or a binding
    that is not a UUID."""
    if purpose not in STEP_UP_PURPOSES:
        known = ", ".join(sorted(STEP_UP_PURPOSES))
        raise InvalidArgumentError(f"purpose must be one of: {known}", field="purpose")
    try:
        return str(uuid.UUID(binding))
    except ValueError:
        raise InvalidArgumentError(
            "binding must be the id (a UUID) of what the step-up is for", field="binding"
        ) from None
