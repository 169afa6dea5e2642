"""Accounts (A1): sign-up with e-mail verification, password reset and password change."""

from __future__ import annotations

import datetime as dt
import uuid

from google.protobuf.message import Message

from helios.identity.domain.model import EmailTokenPurpose, User
from helios.identity.domain.throttle import ThrottleScope, throttle_key
from helios.identity.domain.tokens import hash_token, new_one_time_token
from helios.identity.domain.validation import (
    normalize_email,
    password_strength,
    validate_display_name,
)
from helios.identity.ports import Clock, PasswordHasher, UnitOfWork
from helios.identity.service.account_mail import AccountMail, hours
from helios.identity.service.sessions import SESSION_GONE, SessionService
from helios.identity.service.throttling import SignInGuard
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError, UnauthenticatedError
from helios.proto.audit.v1 import events_pb2

__all__ = ["BAD_LINK", "WRONG_PASSWORD", "AccountService"]

# The one answer for an unknown, used, superseded or expired e-mailed token.
BAD_LINK = "this link is invalid or has expired"
WRONG_PASSWORD = "the current password is wrong"  # noqa: S105 - a message


class AccountService:
    """Account use cases; every state change is audited in its own transaction."""

    def __init__(
        self,
        uow: UnitOfWork,
        hasher: PasswordHasher,
        clock: Clock,
        guard: SignInGuard,
        sessions: SessionService,
        account_mail: AccountMail,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._guard = guard
        self._sessions = sessions
        self._mail = account_mail

    async def sign_up(
        self,
        email: str,
        password: str,
        display_name: str,
        ctx: CallContext,
        request: Message | None,
    ) -> User:
        """Create an account and queue its verification mail in the same transaction; raises
        InvalidArgumentError or AlreadyExistsError."""
        address = normalize_email(email)
        password_strength(password, address)
        name = validate_display_name(display_name or address.split("@")[0])
        user = User(
            id=uuid.uuid4(),
            email=address,
            display_name=name,
            password_hash=await self._hasher.hash(password),
            created_at=self._clock(),
        )
        token = new_one_time_token()
        async with self._uow() as tx:
            await tx.add_user(user)
            await tx.add_email_token(
                user.id,
                EmailTokenPurpose.VERIFY_EMAIL,
                hash_token(token),
                user.created_at,
                user.created_at + self._mail.verify_ttl,
            )
            await tx.enqueue_mail(
                self._mail.platform_org_id,
                address,
                "Verify your Helios e-mail address",
                "Welcome to Helios. Confirm this e-mail address by opening this link within "
                f"{hours(self._mail.verify_ttl)}:\n\n"
                f"{self._mail.link('verify-email', token)}\n\n"
                "If you did not sign up, ignore this message.\n",
            )
            await tx.record(
                Change(
                    action="identity.user.signUp",
                    resource_type="identity.user",
                    resource_id=str(user.id),
                    actor_id=str(user.id),
                    request=request,
                    diff={"email": address, "display_name": name},
                ),
                ctx,
            )
        return user

    async def verify_email(self, token: str, ctx: CallContext, request: Message | None) -> User:
        """Redeem a verification token and mark the user's e-mail verified; raises
        InvalidArgumentError (BAD_LINK) for an unknown, used, superseded or expired token."""
        now = self._clock()
        async with self._uow() as tx:
            user_id = await tx.redeem_email_token(
                hash_token(token), EmailTokenPurpose.VERIFY_EMAIL, now
            )
            user = await tx.user_by_id(user_id) if user_id else None
            if user is None:
                raise InvalidArgumentError(BAD_LINK, field="token")
            await tx.mark_email_verified(user.id, now)
            await tx.record(
                Change(
                    action="identity.user.verifyEmail",
                    resource_type="identity.user",
                    resource_id=str(user.id),
                    actor_id=str(user.id),
                    request=request,
                    diff={"email": user.email},
                ),
                ctx,
            )
        return await self._user(user.id)

    async def request_password_reset(
        self, email: str, ctx: CallContext, request: Message | None
    ) -> None:
        """Mail a reset link to a known account; returns None either way (no enumeration).

        Raises InvalidArgumentError only for a malformed address. Known and unknown addresses
        do the same token generation, hashing and rate lookup; only a known one below its
        hourly cap gets a token, a mail and an audit event (over the cap: audited as refused,
        nothing sent). Nothing at all is written for an unknown address."""
        address = normalize_email(email)
        token = new_one_time_token()
        token_hash = hash_token(token)
        now = self._clock()
        async with self._uow() as tx:
            user = await tx.user_by_email(address)
            recent = await tx.count_email_tokens_since(
                user.id if user else uuid.uuid4(),
                EmailTokenPurpose.RESET_PASSWORD,
                now - dt.timedelta(hours=1),
            )
            if user is None:
                return
            if recent >= self._mail.reset_max_per_hour:
                await tx.record(
                    Change(
                        action="identity.user.passwordResetRequest",
                        resource_type="identity.user",
                        resource_id=str(user.id),
                        outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
                        request=request,
                        diff={"refused": "rate", "recent": recent},
                    ),
                    ctx,
                )
                return
            await tx.add_email_token(
                user.id,
                EmailTokenPurpose.RESET_PASSWORD,
                token_hash,
                now,
                now + self._mail.reset_ttl,
            )
            await tx.enqueue_mail(
                self._mail.platform_org_id,
                user.email,
                "Reset your Helios password",
                "Someone asked to reset the password of this Helios account. Choose a new "
                f"password by opening this link within {hours(self._mail.reset_ttl)}:\n\n"
                f"{self._mail.link('reset-password', token)}\n\n"
                "If it was not you, ignore this message: your password stays as it is.\n",
            )
            await tx.record(
                Change(
                    action="identity.user.passwordResetRequest",
                    resource_type="identity.user",
                    resource_id=str(user.id),
                    request=request,
                ),
                ctx,
            )

    async def reset_password(
        self, token: str, new_password: str, ctx: CallContext, request: Message | None
    ) -> None:
        """Set a new password with a reset token, revoke every session of the user and lift
        its account sign-in lockout. Raises InvalidArgumentError: BAD_LINK for an unknown, used,
        superseded or expired token, or the password policy's refusal (the token then stays
        usable)."""
        now = self._clock()
        async with self._uow() as tx:
            user_id = await tx.redeem_email_token(
                hash_token(token), EmailTokenPurpose.RESET_PASSWORD, now
            )
            user = await tx.user_by_id(user_id) if user_id else None
            if user is None:
                raise InvalidArgumentError(BAD_LINK, field="token")
            password_strength(new_password, user.email)  # raising rolls the redemption back
            await tx.set_password_hash(user.id, await self._hasher.hash(new_password))
            revoked = await tx.revoke_sessions_of(user.id, now)
            await tx.clear_sign_in_throttle(throttle_key(ThrottleScope.ACCOUNT, user.email))
            await tx.record(
                Change(
                    action="identity.user.passwordReset",
                    resource_type="identity.user",
                    resource_id=str(user.id),
                    actor_id=str(user.id),
                    request=request,
                    diff={"sessions_revoked": revoked},
                ),
                ctx,
            )

    async def change_password(
        self,
        current_password: str,
        new_password: str,
        ctx: CallContext,
        request: Message | None,
    ) -> None:
        """Change the caller's password and revoke the user's other sessions (the calling one
        stays). A wrong current password raises UnauthenticatedError and counts as a failed
        sign-in of the account and IP (ResourceExhaustedError while locked); a weak new one
        raises InvalidArgumentError."""
        user, session = await self._sessions.current_user(ctx)
        keys = self._guard.keys(user.email, ctx.ip)
        locked_until = await self._guard.locked_until(keys)
        if locked_until is not None:
            await self._guard.refuse_locked(
                locked_until, ctx, request, action="identity.user.passwordChange"
            )
        if not await self._hasher.verify(user.password_hash, current_password):
            async with self._uow() as tx:
                await tx.record(
                    Change(
                        action="identity.user.passwordChange",
                        resource_type="identity.user",
                        resource_id=str(user.id),
                        outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
                        request=request,
                    ),
                    ctx,
                )
                await self._guard.count_failure(tx, keys, user, ctx, request)
            raise UnauthenticatedError(WRONG_PASSWORD)
        password_strength(new_password, user.email)
        password_hash = await self._hasher.hash(new_password)
        async with self._uow() as tx:
            await tx.set_password_hash(user.id, password_hash)
            revoked = await tx.revoke_sessions_of(user.id, self._clock(), keep=session.id)
            await tx.clear_sign_in_throttle(keys[0])
            await tx.record(
                Change(
                    action="identity.user.passwordChange",
                    resource_type="identity.user",
                    resource_id=str(user.id),
                    request=request,
                    diff={"sessions_revoked": revoked},
                ),
                ctx,
            )

    async def _user(self, user_id: uuid.UUID) -> User:
        async with self._uow() as tx:
            user = await tx.user_by_id(user_id)
        if user is None:
            raise UnauthenticatedError(SESSION_GONE)
        return user
