"""What the local evaluator answers: a decision or a list plan, and where it was decided."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from helios.authz_client.snapshot import HeldGrant
from helios.authz_rules.permissions import Grant
from helios.authz_rules.plan import Plan

__all__ = ["DecisionSource", "LocalDecision", "LocalPlan"]

DecisionSource: TypeAlias = Literal["local", "rpc"]
"""`local`: decided in-process from a snapshot; `rpc`: authz decided (the fallback)."""


@dataclass(frozen=True, slots=True)
class LocalDecision:
    """Allow or deny with the grant that allowed (None on a deny) and where the principal holds
    it, the org's dangerous flag for the permission, the policy revision decided at, a reason
    fit for logs, and whether it was decided locally or by the Check RPC."""

    allowed: bool
    grant: Grant | None
    dangerous: bool
    revision: int
    reason: str
    source: DecisionSource
    held: HeldGrant | None = None


@dataclass(frozen=True, slots=True)
class LocalPlan:
    """A list plan (the rules' Plan) with the dangerous flag, the revision and its source."""

    plan: Plan
    dangerous: bool
    revision: int
    source: DecisionSource
