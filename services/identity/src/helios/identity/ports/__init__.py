"""What identity's use cases need from the outside world, owned here and implemented by adapters."""

from __future__ import annotations

import datetime as dt
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from helios.identity.domain.auth_config import AuthConfig
from helios.identity.domain.model import (
    EmailTokenPurpose,
    Org,
    OrgAuthPolicy,
    PendingSecondFactor,
    Session,
    SignInMethod,
    User,
)
from helios.identity.domain.throttle import ThrottleKey
from helios.identity.ports.api_keys import ApiKeyTransaction
from helios.identity.ports.auth_config import AuthConfigTransaction
from helios.identity.ports.members import MembersTransaction
from helios.identity.ports.mfa import MfaTransaction
from helios.identity.ports.push import PushTransaction
from helios.identity.ports.sign_in_extras import SignInExtrasTransaction
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "AuthConfigSource",
    "Authorizer",
    "Clock",
    "IdentityTransaction",
    "PasswordHasher",
    "PrincipalSigner",
    "SecondFactorGate",
    "SignInObserver",
    "SubjectRights",
    "UnitOfWork",
]


class PasswordHasher(Protocol):
    """argon2id hashing; verification runs in constant time inside the hash library."""

    async def hash(self, password: str) -> str:
        """A PHC string that records the parameters used."""
        ...

    async def verify(self, stored: str, password: str) -> bool:
        """True when `password` matches; never raises for a wrong password."""
        ...

    def needs_rehash(self, stored: str) -> bool:
        """True when `stored` was made with other parameters than the current ones."""
        ...

    async def burn(self, password: str) -> None:
        """Do the work of one verification against a dummy hash (for unknown accounts)."""
        ...


class PrincipalSigner(Protocol):
    """Signs principal assertions (identity is their only issuer)."""

    def sign(self, principal: principal_pb2.Principal) -> principal_pb2.PrincipalAssertion:
        """A short-lived signed assertion of `principal`."""
        ...


class Clock(Protocol):
    """The current time, timezone-aware UTC."""

    def __call__(self) -> dt.datetime: ...


class IdentityTransaction(
    MfaTransaction,
    PushTransaction,
    SignInExtrasTransaction,
    ApiKeyTransaction,
    AuthConfigTransaction,
    MembersTransaction,
    Protocol,
):
    """Reads and writes inside one database transaction, together with its audit events (the
    core ones here, each area's in its own port module)."""

    async def user_by_email(self, email: str) -> User | None:
        """The user with this (normalised) e-mail, or None."""
        ...

    async def user_by_id(self, user_id: uuid.UUID) -> User | None:
        """The user, or None."""
        ...

    async def add_user(self, user: User) -> None:
        """Insert; raises AlreadyExistsError when the e-mail is taken."""
        ...

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        """Replace a user's password hash (parameter upgrade or password change)."""
        ...

    async def add_session(self, session: Session) -> None:
        """Insert a session (its token hash is unique)."""
        ...

    async def session_by_token_hash(self, token_hash: bytes) -> Session | None:
        """The session with this token hash, active or not, or None."""
        ...

    async def session_by_id(self, session_id: uuid.UUID) -> Session | None:
        """The session, active or not, or None."""
        ...

    async def revoke_session(self, session_id: uuid.UUID, at: dt.datetime) -> bool:
        """Mark a session revoked (idempotent); True when it was active until now."""
        ...

    async def revoke_sessions_of(
        self,
        user_id: uuid.UUID,
        at: dt.datetime,
        keep: uuid.UUID | None = None,
        *,
        org_id: uuid.UUID | None = None,
    ) -> int:
        """Revoke every active session of a user except `keep` (when `org_id` is given, only
        those opened in that org or in none; idempotent); returns how many were active until
        now."""
        ...

    async def touch_session(self, session_id: uuid.UUID, at: dt.datetime) -> None:
        """Record a request of the session at `at` (its last_seen_at; never moves backwards)."""
        ...

    async def sessions_of(
        self,
        user_id: uuid.UUID,
        *,
        org_id: uuid.UUID | None,
        now: dt.datetime,
        seen_since: dt.datetime,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Session]:
        """The user's live sessions (not revoked, not past their expiry at `now`, seen since
        `seen_since`; when `org_id` is given, only those opened in that org or in none), newest
        first (by created_at, then id), strictly after the (created_at, id) cursor `after`; at
        most `limit`."""
        ...

    async def is_member(self, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Whether the user is a member of the org."""
        ...

    async def mark_email_verified(self, user_id: uuid.UUID, at: dt.datetime) -> bool:
        """Record that the user's e-mail is verified; True when it was not yet (idempotent)."""
        ...

    async def add_email_token(
        self,
        user_id: uuid.UUID,
        purpose: EmailTokenPurpose,
        token_hash: bytes,
        created_at: dt.datetime,
        expires_at: dt.datetime,
    ) -> None:
        """Store a one-time token's hash and supersede (mark used) the user's older unused
        tokens of the same purpose."""
        ...

    async def count_email_tokens_since(
        self, user_id: uuid.UUID, purpose: EmailTokenPurpose, since: dt.datetime
    ) -> int:
        """How many tokens of `purpose` were issued to the user after `since`."""
        ...

    async def redeem_email_token(
        self, token_hash: bytes, purpose: EmailTokenPurpose, now: dt.datetime
    ) -> uuid.UUID | None:
        """Mark an unused, unexpired token of `purpose` used and return its user; None for an
        unknown, used, superseded or expired one. Atomic: of concurrent redemptions one wins."""
        ...

    async def add_org(self, org: Org, owner_id: uuid.UUID) -> None:
        """Insert an org and make `owner_id` its first member (user type `owner`); raises
        AlreadyExistsError when the slug is taken."""
        ...

    async def first_org_of(self, user_id: uuid.UUID) -> uuid.UUID | None:
        """The org the user joined first, or None."""
        ...

    async def auth_policy_of_user(self, user_id: uuid.UUID) -> OrgAuthPolicy:
        """The strictest sign-in policy over the user's orgs: 2FA required when any of them
        requires it; magic links allowed when any of them allows them."""
        ...

    async def locked_until(self, keys: list[ThrottleKey], now: dt.datetime) -> dt.datetime | None:
        """The latest end of a lockout still in force at `now` on any of `keys`, or None."""
        ...

    async def add_sign_in_failure(
        self, key: ThrottleKey, at: dt.datetime, window_start: dt.datetime
    ) -> int:
        """Record one failed sign-in on `key` and return how many it has since `window_start`
        (this one included); rows older than the window are dropped. Serialised per key for the
        rest of the transaction, so concurrent replicas never lose a count."""
        ...

    async def lock_sign_in(self, key: ThrottleKey, until: dt.datetime) -> None:
        """Lock `key` until `until` (replacing an older lockout) and consume its failures."""
        ...

    async def clear_sign_in_throttle(self, key: ThrottleKey) -> bool:
        """Drop `key`'s failures and lockout (idempotent); True when a lockout was removed."""
        ...

    async def record(self, change: Change, ctx: CallContext) -> None:
        """Enqueue the audit event of `change`; it commits or rolls back with the transaction."""
        ...

    async def enqueue_mail(self, org_id: uuid.UUID, to: str, subject: str, body: str) -> None:
        """Queue a plain-text mail sent only if this transaction commits (InvalidArgumentError
        for a bad address or subject)."""
        ...


class SecondFactorGate(Protocol):
    """Decides, after a first factor passed, whether the sign-in needs a second one (A3, A9)."""

    async def challenge(
        self,
        tx: IdentityTransaction,
        user: User,
        first_factor: SignInMethod,
        device_token: str,
        ctx: CallContext,
    ) -> PendingSecondFactor | None:
        """A stored challenge when the user has a second factor enrolled, or must have one (org
        policy or deployment config) and `device_token` is not a remembered device of theirs;
        None when the sign-in may open a session now."""
        ...


class SignInObserver(Protocol):
    """Told of every sign-in outcome inside its transaction (login history S5, alerts S4)."""

    async def opened(
        self, tx: IdentityTransaction, user: User, session: Session, ctx: CallContext
    ) -> None:
        """A session was opened for `user` (session.method says how)."""
        ...

    async def failed(
        self,
        tx: IdentityTransaction,
        user: User | None,
        method: SignInMethod,
        reason: str,
        ctx: CallContext,
    ) -> None:
        """A sign-in step failed; `user` is None when the account is unknown."""
        ...


@dataclass(frozen=True, slots=True)
class SubjectRights:
    """What a user holds in one org: `grants` as (permission key, scope rank: 1 own, 2 team,
    3 any; a broader scope implies the narrower ones), and whether the user is the platform
    root there."""

    grants: frozenset[tuple[str, int]] = frozenset()
    platform_root: bool = False


class Authorizer(Protocol):
    """Authz decisions for the calling principal (the authz Check RPC)."""

    async def allowed(
        self,
        principal: principal_pb2.Principal,
        permission: str,
        *,
        org_id: str = "",
        owner_id: str = "",
    ) -> bool:
        """Whether `principal` holds `permission` on a resource of `org_id` (the principal's
        org when empty) owned by `owner_id` (none when empty)."""
        ...

    async def rights_of(self, user_id: str, org_id: str) -> SubjectRights:
        """Everything `user_id` holds in `org_id` now (read fully consistent; for comparing two
        users' rights, e.g. before an impersonation)."""
        ...


class AuthConfigSource(Protocol):
    """The deployment's current provider configuration (C1), kept fresh without a restart."""

    def current(self) -> AuthConfig:
        """The configuration in force now."""
        ...


class UnitOfWork(Protocol):
    """Opens a transaction: commits when the block ends normally, rolls back on an exception."""

    def __call__(self) -> AbstractAsyncContextManager[IdentityTransaction]: ...
