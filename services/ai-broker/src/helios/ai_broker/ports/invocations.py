"""Storage port of invocations and their parked confirmations (I3, I4), and the port of the
target services that perform actions."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from helios.ai_broker.domain.model import Invocation
from helios.proto.common.v1 import principal_pb2

__all__ = ["ActionTargets", "InvocationTransaction"]


class InvocationTransaction(Protocol):
    """Reads and writes of invocations inside a broker transaction."""

    async def add_invocation(self, invocation: Invocation) -> None:
        """Insert a new invocation (its id is fresh)."""
        ...

    async def invocation_by_id(
        self, invocation_id: uuid.UUID, *, for_update: bool = False
    ) -> Invocation | None:
        """The invocation, or None; `for_update` locks its row until the transaction ends, so
        that two confirmations of one invocation are decided one after the other."""
        ...

    async def save_invocation(self, invocation: Invocation) -> None:
        """Write the invocation's changing fields (state, output and its hash, decider, error,
        completion time) over its row."""
        ...


class ActionTargets(Protocol):
    """The services that perform registered actions (I5: the broker's only outbound calls)."""

    async def call(
        self,
        service: str,
        method: str,
        data: dict[str, Any],
        principal: principal_pb2.Principal,
    ) -> dict[str, Any]:
        """Call `method` (`/package.Service/Method`) of `service` with the request built from
        `data` (proto JSON field names), as `principal` (signed by the broker); returns the
        response in proto JSON (original field names, whole numbers as ints). Raises
        TargetCallError (domain/invocations.py) when the service is unknown, the input does
        not fit the request message, or the call fails. Never retried: a dangerous action
        runs at most once."""
        ...
