"""What the broker's use cases need from the outside world, owned here and implemented by
adapters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from helios.ai_broker.ports.invocations import InvocationTransaction
from helios.ai_broker.ports.policies import PolicyTransaction
from helios.ai_broker.ports.registry import RegistryTransaction
from helios.ai_broker.ports.sessions import SessionTransaction
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "Authz",
    "AuthzDecision",
    "BrokerTransaction",
    "Clock",
    "PrincipalSigner",
    "UnitOfWork",
]


class Clock(Protocol):
    """The current time, timezone-aware UTC."""

    def __call__(self) -> dt.datetime: ...


class PrincipalSigner(Protocol):
    """Signs AI principal assertions with the broker's key (verifiers accept it for AI only)."""

    def sign(self, principal: principal_pb2.Principal) -> principal_pb2.PrincipalAssertion:
        """A short-lived signed assertion of `principal`."""
        ...


@dataclass(frozen=True, slots=True)
class AuthzDecision:
    """An authz decision: allowed or not, its id (for audit rows) and whether the permission is
    dangerous in the org (D1 defaults and the org's D2 marks)."""

    allowed: bool
    decision_id: str
    dangerous: bool


class Authz(Protocol):
    """Authz's decisions and subject grants (the authz RPCs)."""

    async def check(
        self,
        principal: principal_pb2.Principal,
        permission: str,
        *,
        narrowing: Sequence[str] = (),
        org_id: str = "",
        owner_id: str = "",
        team_id: str = "",
    ) -> AuthzDecision:
        """Check as `principal` (for an AI principal, within `narrowing`: permission keys with
        optional scope suffixes) on a resource of `org_id` owned by `owner_id` in `team_id`."""
        ...

    async def grants_of(self, user_id: str, org_id: str) -> frozenset[tuple[str, str]]:
        """Every (permission key, scope: own/team/any) the user holds in the org now."""
        ...

    async def teams_of(self, user_id: str, org_id: str) -> frozenset[str]:
        """The teams the user belongs to in the org now (what a `team` grant reaches)."""
        ...

    async def dangerous_patterns(self, org_id: str) -> frozenset[str]:
        """The keys and `*` patterns dangerous in the org now (D1 defaults, keys flagged by
        their spec, the org's D2 marks); raises UnavailableError when authz cannot answer."""
        ...


class BrokerTransaction(
    SessionTransaction, RegistryTransaction, InvocationTransaction, PolicyTransaction, Protocol
):
    """Reads and writes inside one database transaction, together with its audit events."""

    async def record(self, change: Change, ctx: CallContext) -> None:
        """Enqueue the audit event of `change`; it commits or rolls back with the transaction."""
        ...


class UnitOfWork(Protocol):
    """Opens a transaction: commits when the block ends normally, rolls back on an exception."""

    def __call__(self) -> AbstractAsyncContextManager[BrokerTransaction]: ...
