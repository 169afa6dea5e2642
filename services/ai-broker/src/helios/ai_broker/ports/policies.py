"""Storage port of the orgs' AI policies."""

from __future__ import annotations

from typing import Protocol

from helios.ai_broker.domain.policy import AiPolicy

__all__ = ["PolicyTransaction"]


class PolicyTransaction(Protocol):
    """Reads and writes of AI policies inside a broker transaction."""

    async def ai_policy_of(self, org_id: str) -> AiPolicy:
        """The org's policy, or DEFAULT_POLICY when it never set one."""
        ...

    async def save_ai_policy(self, org_id: str, policy: AiPolicy, expected_version: int) -> bool:
        """Store `policy` (its version is expected_version + 1) if the stored version is still
        `expected_version` (0: none stored); False when another update came first."""
        ...
