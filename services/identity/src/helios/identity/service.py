"""Identity's use cases: sign-up, sign-in (throttled), unlock, session resolution, org creation,
e-mail verification and password reset / change."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from google.protobuf.message import Message

from helios.identity.domain.model import EmailTokenPurpose, Org, Session, User
from helios.identity.domain.throttle import (
    ThrottleKey,
    ThrottlePolicy,
    ThrottleScope,
    retry_after_seconds,
    throttle_key,
)
from helios.identity.domain.tokens import hash_token, new_one_time_token, new_session_token
from helios.identity.domain.validation import (
    normalize_email,
    password_strength,
    validate_display_name,
    validate_slug,
)
from helios.identity.ports import (
    Clock,
    IdentityTransaction,
    PasswordHasher,
    PrincipalSigner,
    UnitOfWork,
)
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    InvalidArgumentError,
    ResourceExhaustedError,
    UnauthenticatedError,
)
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2

__all__ = ["AccountMail", "IdentityService", "ResolvedSession", "SignedIn"]

# The one answer for a wrong password and an unknown e-mail (no account enumeration).
BAD_CREDENTIALS = "invalid e-mail or password"
# The one answer while an account or address is locked, whether or not the account exists.
TOO_MANY_ATTEMPTS = "too many failed sign-in attempts; try again in {seconds} seconds"
_SESSION_GONE = "session is invalid or has expired"
_PLATFORM_ORG = uuid.UUID(int=0)
# The one answer for an unknown, used, superseded or expired e-mailed token.
BAD_LINK = "this link is invalid or has expired"
_WRONG_PASSWORD = "the current password is wrong"  # noqa: S105 - a message


@dataclass(frozen=True, slots=True)
class AccountMail:
    """Links, lifetimes and limits of the account mails (verification, password reset).

    Users belong to no org when they sign up, so these mails go out (and are DKIM-signed) as
    `platform_org_id`. `reset_max_per_hour` caps reset mails per account: further requests in
    the hour answer the same but send nothing."""

    public_url: str = "http://localhost:8080"
    platform_org_id: uuid.UUID = _PLATFORM_ORG
    verify_ttl: dt.timedelta = dt.timedelta(hours=24)
    reset_ttl: dt.timedelta = dt.timedelta(hours=1)
    reset_max_per_hour: int = 3

    def link(self, page: str, token: str) -> str:
        """The public URL of `page` carrying `token`."""
        return f"{self.public_url.rstrip('/')}/{page}?token={token}"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session; `token` is shown to the client once and never stored."""

    token: str
    session: Session
    user: User


@dataclass(frozen=True, slots=True)
class ResolvedSession:
    """Who a session token belongs to, with a signed assertion for downstream services."""

    user: User
    session: Session
    principal: principal_pb2.Principal
    assertion: principal_pb2.PrincipalAssertion


class IdentityService:
    """Use cases over the ports; every state change is audited in its own transaction."""

    def __init__(
        self,
        uow: UnitOfWork,
        hasher: PasswordHasher,
        signer: PrincipalSigner,
        clock: Clock,
        session_ttl: dt.timedelta,
        throttle: ThrottlePolicy | None = None,
        account_mail: AccountMail | None = None,
    ) -> None:
        self._uow = uow
        self._mail = account_mail or AccountMail()
        self._hasher = hasher
        self._signer = signer
        self._clock = clock
        self._session_ttl = session_ttl
        self._throttle = throttle or ThrottlePolicy()

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
                f"{_hours(self._mail.verify_ttl)}:\n\n"
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

    async def sign_in(
        self, email: str, password: str, ctx: CallContext, request: Message | None
    ) -> SignedIn:
        """Open a session; raises UnauthenticatedError with one message for every failure, or
        ResourceExhaustedError (with a retry delay) while the account or the client IP is locked.

        Throttling is keyed on the address as typed (normalised), known or not, and on `ctx.ip`;
        a locked attempt is refused before the user is looked up and before any hashing, so it
        costs the same and answers the same for every address. Unknown e-mails cost one dummy
        verification so that timing does not tell them apart; every attempt, failed or not, is
        audited. Hashes made with older parameters are upgraded here.
        """
        try:
            address = normalize_email(email)
        except InvalidArgumentError:
            address = ""
        keys = self._throttle.keys(address or email, ctx.ip)
        async with self._uow() as tx:
            locked_until = await tx.locked_until(keys, self._clock())
            user = await tx.user_by_email(address) if address and locked_until is None else None
        if locked_until is not None:
            await self._refuse_locked(locked_until, ctx, request)
        if user is None:
            await self._hasher.burn(password)
            verified = False
        else:
            verified = await self._hasher.verify(user.password_hash, password)
        async with self._uow() as tx:
            if user is None or not verified:
                await tx.record(
                    Change(
                        action="identity.user.signIn",
                        resource_type="identity.user",
                        resource_id=str(user.id) if user else "",
                        actor_id=str(user.id) if user else "",
                        outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
                        request=request,
                    ),
                    ctx,
                )
                await self._count_failure(tx, keys, user, ctx, request)
            else:
                await tx.clear_sign_in_throttle(keys[0])
                if self._hasher.needs_rehash(user.password_hash):
                    await tx.set_password_hash(user.id, await self._hasher.hash(password))
                now = self._clock()
                token = new_session_token()
                session = Session(
                    id=uuid.uuid4(),
                    user_id=user.id,
                    token_hash=hash_token(token),
                    created_at=now,
                    expires_at=now + self._session_ttl,
                    ip=ctx.ip,
                    user_agent=ctx.user_agent,
                    org_id=await tx.first_org_of(user.id),
                )
                await tx.add_session(session)
                await tx.record(
                    Change(
                        action="identity.user.signIn",
                        resource_type="identity.session",
                        resource_id=str(session.id),
                        org_id=str(session.org_id or ""),
                        actor_id=str(user.id),
                        request=request,
                    ),
                    ctx,
                )
        if user is None or not verified:
            raise UnauthenticatedError(BAD_CREDENTIALS)
        return SignedIn(token=token, session=session, user=user)

    async def _refuse_locked(
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

    async def _count_failure(
        self,
        tx: IdentityTransaction,
        keys: list[ThrottleKey],
        user: User | None,
        ctx: CallContext,
        request: Message | None,
    ) -> None:
        """Add the failure to every key; lock (and audit `signInLocked`) each key at its limit."""
        now = self._clock()
        window_start = now - self._throttle.window
        for key in keys:
            failures = await tx.add_sign_in_failure(key, now, window_start)
            if failures < self._throttle.limit(key.scope):
                continue
            until = now + self._throttle.lockout
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

    async def unlock(self, email: str, ctx: CallContext, request: Message | None) -> bool:
        """Lift the sign-in lockout of an account and reset its failure count (for admins; the
        caller's permission is checked by the RPC that will expose it). Raises
        InvalidArgumentError for a malformed address; True when a lockout was lifted. Audited as
        `identity.user.signInUnlocked` either way."""
        address = normalize_email(email)
        async with self._uow() as tx:
            lifted = await tx.clear_sign_in_throttle(throttle_key(ThrottleScope.ACCOUNT, address))
            user = await tx.user_by_email(address)
            await tx.record(
                Change(
                    action="identity.user.signInUnlocked",
                    resource_type="identity.user",
                    resource_id=str(user.id) if user else "",
                    request=request,
                    diff={"lifted": lifted},
                ),
                ctx,
            )
        return lifted

    async def resolve_session(self, token: str, ctx: CallContext) -> ResolvedSession:
        """The user and a fresh principal assertion of an active session token; raises
        UnauthenticatedError for an unknown, revoked or expired token."""
        if not token:
            raise UnauthenticatedError(_SESSION_GONE)
        async with self._uow() as tx:
            session = await tx.session_by_token_hash(hash_token(token))
            if session is None or not session.is_active(self._clock()):
                raise UnauthenticatedError(_SESSION_GONE)
            user = await tx.user_by_id(session.user_id)
        if user is None:
            raise UnauthenticatedError(_SESSION_GONE)
        principal = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=str(user.id),
            org_id=str(session.org_id or ""),
            session_id=str(session.id),
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        return ResolvedSession(
            user=user, session=session, principal=principal, assertion=self._signer.sign(principal)
        )

    async def current_user(self, ctx: CallContext) -> tuple[User, Session]:
        """The calling user and session; raises UnauthenticatedError when either is gone."""
        principal = ctx.require_principal()
        async with self._uow() as tx:
            session = await tx.session_by_id(uuid.UUID(principal.session_id))
            user = await tx.user_by_id(uuid.UUID(principal.actor_id))
        if session is None or user is None or not session.is_active(self._clock()):
            raise UnauthenticatedError(_SESSION_GONE)
        return user, session

    async def sign_out(self, ctx: CallContext, request: Message | None) -> None:
        """Revoke the caller's session (idempotent); audited when it was still active."""
        principal = ctx.require_principal()
        session_id = uuid.UUID(principal.session_id)
        async with self._uow() as tx:
            if await tx.revoke_session(session_id, self._clock()):
                await tx.record(
                    Change(
                        action="identity.session.signOut",
                        resource_type="identity.session",
                        resource_id=str(session_id),
                        request=request,
                    ),
                    ctx,
                )

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
                f"password by opening this link within {_hours(self._mail.reset_ttl)}:\n\n"
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
        user, session = await self.current_user(ctx)
        keys = self._throttle.keys(user.email, ctx.ip)
        async with self._uow() as tx:
            locked_until = await tx.locked_until(keys, self._clock())
        if locked_until is not None:
            await self._refuse_locked(
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
                await self._count_failure(tx, keys, user, ctx, request)
            raise UnauthenticatedError(_WRONG_PASSWORD)
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
            raise UnauthenticatedError(_SESSION_GONE)
        return user

    async def create_org(
        self, slug: str, name: str, owner_id: uuid.UUID, ctx: CallContext, request: Message | None
    ) -> Org:
        """Create a tenant with its first member; raises InvalidArgumentError or
        AlreadyExistsError. The audit event doubles as `org.created` for authz (issue #5)."""
        org = Org(
            id=uuid.uuid4(),
            slug=validate_slug(slug),
            name=name.strip() or slug,
            created_at=self._clock(),
        )
        async with self._uow() as tx:
            if await tx.user_by_id(owner_id) is None:
                raise InvalidArgumentError(
                    "owner_user_id does not name a user", field="owner_user_id"
                )
            await tx.add_org(org, owner_id)
            await tx.record(
                Change(
                    action="identity.org.create",
                    resource_type="identity.org",
                    resource_id=str(org.id),
                    org_id=str(org.id),
                    request=request,
                    diff={"slug": org.slug, "name": org.name, "owner_user_id": str(owner_id)},
                ),
                ctx,
            )
        return org


def _hours(ttl: dt.timedelta) -> str:
    hours = ttl.total_seconds() / 3600
    return "1 hour" if hours == 1 else f"{hours:g} hours"
