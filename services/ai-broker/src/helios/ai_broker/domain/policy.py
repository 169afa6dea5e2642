"""An org's AI policy (I3): whether confirming a dangerous action needs a step-up."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["DEFAULT_POLICY", "AiPolicy"]


@dataclass(frozen=True, slots=True)
class AiPolicy:
    """The policy and its revision; version 0 is an org that never set one (the defaults)."""

    require_step_up_to_confirm: bool = False
    version: int = 0
    updated_at: dt.datetime | None = None
    updated_by: str = ""


DEFAULT_POLICY = AiPolicy()
"""What an org that never set a policy gets: no step-up to confirm."""
