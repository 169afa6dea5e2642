"""Answering a sign-in challenge (A3, A9): e-mailing a one-time code, then checking a TOTP,
backup, e-mailed code or an approved push and opening the session (and remembering the device)."""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

from google.protobuf.message import Message

from helios.identity.domain.email_otp import (
    EMAIL_OTP_MAX_SENDS,
    EMAIL_OTP_TTL,
    hash_email_otp,
    new_email_otp,
)
from helios.identity.domain.model import SignInMethod, User
from helios.identity.domain.second_factor import SignInChallenge
from helios.identity.domain.tokens import hash_token
from helios.identity.ports import Clock, IdentityTransaction, UnitOfWork
from helios.identity.service.account_mail import AccountMail
from helios.identity.service.mfa import MfaService
from helios.identity.service.opening import SessionOpener, SignedIn
from helios.identity.service.remembered_devices import RememberedDevices
from helios.identity.service.second_factor import MAX_WRONG_CODES
from helios.identity.service.throttling import SignInGuard
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    DomainError,
    FailedPreconditionError,
    InvalidArgumentError,
    ResourceExhaustedError,
    UnauthenticatedError,
)
from helios.proto.audit.v1 import events_pb2

__all__ = ["CHALLENGE_GONE", "WRONG_CODE", "Completed", "SecondFactorService"]

# The one answer for an unknown, forged, expired, completed or closed challenge token.
CHALLENGE_GONE = "this sign-in is unknown or no longer valid: sign in again"
WRONG_CODE = "the code is wrong, expired or already used"
OTP_SUBJECT = "Your Helios sign-in code"
SECOND_FACTORS = frozenset(
    {SignInMethod.TOTP, SignInMethod.BACKUP_CODE, SignInMethod.EMAIL_OTP, SignInMethod.PUSH}
)


@dataclass(frozen=True, slots=True)
class Completed:
    """The session a challenge opened; `device_token` (shown once) when the device was
    remembered, else ''."""

    signed_in: SignedIn
    device_token: str = ""


class _ChallengeTakenError(Exception):
    """Raised inside a transaction to roll back what a verified code spent when another call
    completed (or closed) the challenge first."""


class SecondFactorService:
    """Challenges are answered by their token (the proof of the first factor). Every wrong code
    counts on the challenge (closed after MAX_WRONG_CODES) and on the account throttle; every
    step is audited."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        guard: SignInGuard,
        opener: SessionOpener,
        mfa: MfaService,
        devices: RememberedDevices,
        mail: AccountMail,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._guard = guard
        self._opener = opener
        self._mfa = mfa
        self._devices = devices
        self._mail = mail

    async def send_email_otp(
        self, token: str, ctx: CallContext, request: Message | None
    ) -> dt.datetime:
        """Mail a new 6-digit code (replacing an earlier one) to the account of an open
        challenge and return when it expires. UnauthenticatedError (CHALLENGE_GONE) for a token
        that is not an open challenge; ResourceExhaustedError after EMAIL_OTP_MAX_SENDS mails."""
        now = self._clock()
        expires_at = now + EMAIL_OTP_TTL
        async with self._uow() as tx:
            challenge, user = await self._challenge(tx, token)
            refusal = await self._refuse_sending(tx, challenge, user, now)
            if refusal is None and challenge is not None and user is not None:
                code = new_email_otp()
                await tx.put_email_otp(challenge.id, hash_email_otp(challenge.id, code), expires_at)
                await tx.enqueue_mail(
                    self._mail.platform_org_id, user.email, OTP_SUBJECT, _otp_body(code)
                )
            await tx.record(
                Change(
                    action="identity.mfa.emailOtpSend",
                    resource_type="identity.signInChallenge",
                    resource_id=str(challenge.id) if challenge else "",
                    actor_id=str(user.id) if user else "",
                    outcome=events_pb2.AUDIT_OUTCOME_FAILURE
                    if refusal
                    else events_pb2.AUDIT_OUTCOME_SUCCESS,
                    request=request,
                    diff={"refused": str(refusal)} if refusal else {},
                ),
                ctx,
            )
        if refusal is not None:
            raise refusal
        return expires_at

    async def _refuse_sending(
        self,
        tx: IdentityTransaction,
        challenge: SignInChallenge | None,
        user: User | None,
        now: dt.datetime,
    ) -> DomainError | None:
        """Why no code may be mailed for this challenge now, or None."""
        if challenge is None or user is None or not _usable(challenge, now):
            return UnauthenticatedError(CHALLENGE_GONE)
        current = await tx.email_otp_of(challenge.id)
        if current is not None and current.sends >= EMAIL_OTP_MAX_SENDS:
            return ResourceExhaustedError(
                "too many codes were sent for this sign-in: sign in again"
            )
        return None

    async def complete(
        self,
        token: str,
        method: SignInMethod,
        code: str,
        remember_device: bool,
        ctx: CallContext,
        request: Message | None,
    ) -> Completed:
        """Check the answer to a challenge and open the session (method = the second factor).

        UnauthenticatedError: CHALLENGE_GONE for a token that is not an open challenge, WRONG_CODE
        for a wrong, expired or reused code; InvalidArgumentError for a method the challenge does
        not offer; FailedPreconditionError when no push was approved; ResourceExhaustedError
        while the account or IP is locked. Of concurrent completions of one challenge exactly one
        opens a session."""
        if method not in SECOND_FACTORS:
            raise InvalidArgumentError("choose a second-factor method", field="method")
        if method is not SignInMethod.PUSH and not code.strip():
            raise InvalidArgumentError("the code is required", field="code")
        async with self._uow() as tx:
            challenge, user = await self._challenge(tx, token)
            totp = await tx.totp_of(user.id) if user and method is SignInMethod.TOTP else None
        if challenge is None or user is None or not _usable(challenge, self._clock()):
            await self._refuse(user, method, "challenge_gone", ctx, request)
            raise UnauthenticatedError(CHALLENGE_GONE)
        if method not in challenge.methods:
            await self._refuse(user, method, "method_not_offered", ctx, request)
            raise InvalidArgumentError("this sign-in does not offer that method", field="method")
        keys = self._guard.keys(user.email, ctx.ip)
        locked_until = await self._guard.locked_until(keys)
        if locked_until is not None:
            await self._guard.refuse_locked(locked_until, ctx, request)
        step = await self._mfa.totp_step(totp, code) if method is SignInMethod.TOTP else None
        now = self._clock()
        try:
            async with self._uow() as tx:
                if await self._verify(tx, challenge, user, method, code, step, now):
                    if not await tx.complete_sign_in_challenge(challenge.id, now, MAX_WRONG_CODES):
                        raise _ChallengeTakenError
                    signed_in = await self._opener.open(tx, user, method, ctx, request)
                    device = (
                        await self._devices.remember(tx, user, ctx, request)
                        if remember_device
                        else ""
                    )
                    await tx.clear_sign_in_throttle(keys[0])
                    return Completed(signed_in=signed_in, device_token=device)
                if method is SignInMethod.PUSH:
                    await self._opener.failed(tx, user, method, "push_not_approved", ctx, request)
                    refusal: DomainError = FailedPreconditionError(
                        "no device has approved this sign-in yet"
                    )
                else:
                    await tx.count_challenge_failure(challenge.id)
                    await self._opener.failed(tx, user, method, "wrong_code", ctx, request)
                    await self._guard.count_failure(tx, keys, user, ctx, request)
                    refusal = UnauthenticatedError(WRONG_CODE)
        except _ChallengeTakenError:
            await self._refuse(user, method, "challenge_gone", ctx, request)
            raise UnauthenticatedError(CHALLENGE_GONE) from None
        raise refusal

    async def _challenge(
        self, tx: IdentityTransaction, token: str
    ) -> tuple[SignInChallenge | None, User | None]:
        if not token:
            return None, None
        challenge = await tx.sign_in_challenge_by_token_hash(hash_token(token))
        if challenge is None:
            return None, None
        return challenge, await tx.user_by_id(challenge.user_id)

    async def _verify(
        self,
        tx: IdentityTransaction,
        challenge: SignInChallenge,
        user: User,
        method: SignInMethod,
        code: str,
        totp_step: int | None,
        now: dt.datetime,
    ) -> bool:
        """Whether the answer is right; spends what is single-use (TOTP step, backup code,
        approved push), so the caller rolls back when it cannot complete the challenge."""
        if method is SignInMethod.TOTP:
            return totp_step is not None and await tx.use_totp_step(user.id, totp_step)
        if method is SignInMethod.BACKUP_CODE:
            return await self._mfa.use_backup_code(tx, user.id, code)
        if method is SignInMethod.PUSH:
            return await tx.consume_approved_push(challenge.id, now)
        otp = await tx.email_otp_of(challenge.id)
        return (
            otp is not None
            and now < otp.expires_at
            and hmac.compare_digest(otp.code_hash, hash_email_otp(challenge.id, code))
        )

    async def _refuse(
        self,
        user: User | None,
        method: SignInMethod,
        reason: str,
        ctx: CallContext,
        request: Message | None,
    ) -> None:
        async with self._uow() as tx:
            await self._opener.failed(tx, user, method, reason, ctx, request)


def _usable(challenge: SignInChallenge, now: dt.datetime) -> bool:
    """Open, and not closed by too many wrong codes."""
    return challenge.is_open(now) and challenge.attempts < MAX_WRONG_CODES


def _otp_body(code: str) -> str:
    minutes = int(EMAIL_OTP_TTL.total_seconds() // 60)
    return (
        f"Your Helios sign-in code is {code}\n\n"
        f"It expires in {minutes} minutes. If you did not try to sign in, change your password: "
        "someone knows it.\n"
    )
