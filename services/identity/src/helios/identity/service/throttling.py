"""Sign-in throttling shared by every password check: refusal while locked, failure counting."""

from __future__ import annotations

import datetime as dt

from google.protobuf.message import Message

from helios.identity.domain.model import User
from helios.identity.domain.throttle import (
    ThrottleKey,
    ThrottlePolicy,
    ThrottleScope,
    retry_after_seconds,
)
from helios.identity.ports import Clock, IdentityTransaction, UnitOfWork
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import ResourceExhaustedError
from helios.proto.audit.v1 import events_pb2

__all__ = ["TOO_MANY_ATTEMPTS", "SignInGuard"]

# The one answer while an account or address is locked, whether or not the account exists.
TOO_MANY_ATTEMPTS = "too many failed sign-in attempts; try again in {seconds} seconds"


class SignInGuard:
    """Keeps failure counts and lockouts per account and per IP in PostgreSQL (every replica
    sees the same counts)."""

    def __init__(self, uow: UnitOfWork, clock: Clock, policy: ThrottlePolicy) -> None:
        self._uow = uow
        self._clock = clock
        self.policy = policy

    def keys(self, account: str, ip: str) -> list[ThrottleKey]:
        """The account key first, then the IP key (when there is an IP)."""
        return self.policy.keys(account, ip)

    async def locked_until(self, keys: list[ThrottleKey]) -> dt.datetime | None:
        """The end of a lockout in force on any of `keys`, or None (its own transaction)."""
        async with self._uow() as tx:
            return await self.locked_in(tx, keys)

    async def locked_in(
        self, tx: IdentityTransaction, keys: list[ThrottleKey]
    ) -> dt.datetime | None:
        """The end of a lockout in force on any of `keys`, or None, read in `tx`."""
        return await tx.locked_until(keys, self._clock())

    async def refuse_locked(
        self,
        locked_until: dt.datetime,
        ctx: CallContext,
        request: Message | None,
        action: str = "identity.user.signIn",
    ) -> None:
        """Audit a refused attempt on a locked key and raise ResourceExhaustedError."""
        seconds = retry_after_seconds(locked_until, self._clock())
        async with self._uow() as tx:
            await tx.record(
                Change(
                    action=action,
                    resource_type="identity.user",
                    outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
                    request=request,
                    diff={"refused": "locked", "retry_after_seconds": seconds},
                ),
                ctx,
            )
        raise ResourceExhaustedError(
            TOO_MANY_ATTEMPTS.format(seconds=seconds), retry_after_seconds=seconds
        )

    async def count_failure(
        self,
        tx: IdentityTransaction,
        keys: list[ThrottleKey],
        user: User | None,
        ctx: CallContext,
        request: Message | None,
    ) -> None:
        """Add the failure to every key; lock (and audit `signInLocked`) each key at its limit."""
        now = self._clock()
        window_start = now - self.policy.window
        for key in keys:
            failures = await tx.add_sign_in_failure(key, now, window_start)
            if failures < self.policy.limit(key.scope):
                continue
            until = now + self.policy.lockout
            await tx.lock_sign_in(key, until)
            known = user is not None and key.scope is ThrottleScope.ACCOUNT
            await tx.record(
                Change(
                    action="identity.user.signInLocked",
                    resource_type="identity.user",
                    resource_id=str(user.id) if known and user else "",
                    outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
                    request=request,
                    diff={
                        "scope": key.scope.value,
                        "failures": failures,
                        "locked_until": until.isoformat(),
                    },
                ),
                ctx,
            )
