"""Password sign-in (A1): throttled, enumeration-safe, upgrading old hashes, then either a
session or a second-factor challenge (A3)."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from helios.identity.domain.model import PendingSecondFactor, SignInMethod, User
from helios.identity.domain.validation import normalize_email
from helios.identity.ports import (
    PasswordHasher,
    SecondFactorGate,
    UnitOfWork,
)
from helios.identity.service.opening import SessionOpener, SignedIn
from helios.identity.service.throttling import SignInGuard
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError, UnauthenticatedError

__all__ = ["BAD_CREDENTIALS", "SignInOutcome", "SignInService"]

# The one answer for a wrong password and an unknown e-mail (no account enumeration).
BAD_CREDENTIALS = "invalid e-mail or password"


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """Exactly one of: a session, or a pending second factor (with the user it is for)."""

    user: User
    signed_in: SignedIn | None = None
    second_factor: PendingSecondFactor | None = None


class SignInService:
    """E-mail and password in, session (or challenge) out."""

    def __init__(
        self,
        uow: UnitOfWork,
        hasher: PasswordHasher,
        guard: SignInGuard,
        opener: SessionOpener,
        gate: SecondFactorGate,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._guard = guard
        self._opener = opener
        self._gate = gate

    async def sign_in(
        self,
        email: str,
        password: str,
        device_token: str,
        ctx: CallContext,
        request: Message | None,
    ) -> SignInOutcome:
        """Check the password; raises UnauthenticatedError with one message for every failure,
        or ResourceExhaustedError (with a retry delay) while the account or the client IP is
        locked.

        Throttling is keyed on the address as typed (normalised), known or not, and on `ctx.ip`;
        a locked attempt is refused before the user is looked up and before any hashing, so it
        costs the same and answers the same for every address. Unknown e-mails cost one dummy
        verification so that timing does not tell them apart; every attempt, failed or not, is
        audited. Hashes made with older parameters are upgraded here. A passed password opens a
        session unless the gate asks for a second factor (`device_token`: a remembered device).
        """
        try:
            address = normalize_email(email)
        except InvalidArgumentError:
            address = ""
        keys = self._guard.keys(address or email, ctx.ip)
        async with self._uow() as tx:
            locked_until = await self._guard.locked_in(tx, keys)
            user = await tx.user_by_email(address) if address and locked_until is None else None
        if locked_until is not None:
            await self._guard.refuse_locked(locked_until, ctx, request)
        if user is None:
            await self._hasher.burn(password)
            verified = False
        else:
            verified = await self._hasher.verify(user.password_hash, password)
        async with self._uow() as tx:
            if user is None or not verified:
                await self._opener.failed(
                    tx, user, SignInMethod.PASSWORD, "bad_credentials", ctx, request
                )
                await self._guard.count_failure(tx, keys, user, ctx, request)
                outcome = None
            else:
                if self._hasher.needs_rehash(user.password_hash):
                    await tx.set_password_hash(user.id, await self._hasher.hash(password))
                pending = await self._gate.challenge(
                    tx, user, SignInMethod.PASSWORD, device_token, ctx
                )
                if pending is not None:
                    outcome = SignInOutcome(user=user, second_factor=pending)
                else:
                    # Only a finished sign-in clears the account's count: a password that only
                    # leads to a challenge must not wipe the wrong second-factor codes.
                    await tx.clear_sign_in_throttle(keys[0])
                    signed_in = await self._opener.open(
                        tx, user, SignInMethod.PASSWORD, ctx, request
                    )
                    outcome = SignInOutcome(user=user, signed_in=signed_in)
        if outcome is None:
            raise UnauthenticatedError(BAD_CREDENTIALS)
        return outcome
