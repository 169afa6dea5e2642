"""Storage port of the action registry (I5)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from helios.ai_broker.domain.model import Action

__all__ = ["RegistryTransaction"]


class RegistryTransaction(Protocol):
    """Reads and writes of registered actions inside a broker transaction."""

    async def action_by_name(self, name: str) -> Action | None:
        """The registered action, or None."""
        ...

    async def actions_of_service(self, service: str) -> list[Action]:
        """Every action `service` registered, and a lock on its set until the transaction ends:
        concurrent registrations of one service (its replicas starting together) run one after
        the other."""
        ...

    async def save_action(self, action: Action) -> None:
        """Insert the action or replace the one of that name (idempotent)."""
        ...

    async def remove_actions(self, names: Collection[str]) -> None:
        """Delete the actions of these names; names not registered are ignored."""
        ...

    async def actions_page(self, after: str, limit: int, ai_allowed_only: bool) -> list[Action]:
        """Up to `limit` actions named after `after` ('' for the first), ordered by name; only
        ai_allowed ones when `ai_allowed_only`."""
        ...
