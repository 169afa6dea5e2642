"""Magic-link sign-in (A8): off unless enabled for the deployment or one of the user's orgs; an
e-mailed single-use link, valid 15 minutes, stored only as its hash; the same answer for every
address; redeeming it is a first factor like a password (the second-factor gate still asks)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from google.protobuf.message import Message

from helios.identity.domain.model import EmailTokenPurpose, SignInMethod
from helios.identity.domain.tokens import hash_token, new_one_time_token
from helios.identity.domain.validation import normalize_email
from helios.identity.ports import (
    AuthConfigSource,
    Clock,
    IdentityTransaction,
    SecondFactorGate,
    UnitOfWork,
)
from helios.identity.service.account_mail import AccountMail
from helios.identity.service.accounts import BAD_LINK
from helios.identity.service.opening import SessionOpener
from helios.identity.service.sign_in import SignInOutcome
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import FailedPreconditionError, InvalidArgumentError
from helios.proto.audit.v1 import events_pb2

__all__ = ["MAGIC_LINK_DISABLED", "MAGIC_LINK_PAGE", "MagicLinkPolicy", "MagicLinkService"]

MAGIC_LINK_DISABLED = "sign-in by e-mail link is not enabled for this account"
MAGIC_LINK_PAGE = "magic-link"
"""The page of the public origin the mailed link opens (it posts the token to the gateway)."""


@dataclass(frozen=True, slots=True)
class MagicLinkPolicy:
    """How long a link lives and how many may be mailed to one account per hour (further
    requests answer the same but send nothing)."""

    ttl: dt.timedelta = dt.timedelta(minutes=15)
    max_per_hour: int = 3

    def __post_init__(self) -> None:
        if self.ttl <= dt.timedelta(0) or self.max_per_hour < 1:
            raise ValueError("ttl and max_per_hour must be positive")


def _minutes(ttl: dt.timedelta) -> str:
    count = ttl.total_seconds() / 60
    return "1 minute" if count == 1 else f"{count:g} minutes"


class MagicLinkService:
    """Request and redeem magic links; every outcome for a known account is audited."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        config: AuthConfigSource,
        account_mail: AccountMail,
        opener: SessionOpener,
        gate: SecondFactorGate,
        policy: MagicLinkPolicy | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._config = config
        self._mail = account_mail
        self._opener = opener
        self._gate = gate
        self._policy = policy or MagicLinkPolicy()

    async def _enabled(self, tx: IdentityTransaction, user_id: uuid.UUID) -> bool:
        policy = await tx.auth_policy_of_user(user_id)
        return self._config.current().magic_link_enabled or policy.magic_link_enabled

    async def request(self, email: str, ctx: CallContext, request: Message | None) -> None:
        """Mail a sign-in link to a known account for which magic links are enabled; returns
        None in every case (no enumeration).

        Raises InvalidArgumentError only for a malformed address. Every address costs the same
        token generation, hashing and lookups (policy, recent links); only a known, enabled
        account below its hourly cap gets a token, a mail and an audit event. A known account
        refused (disabled, over the cap) is audited as such, with nothing sent; nothing at all
        is written for an unknown address."""
        address = normalize_email(email)
        token = new_one_time_token()
        token_hash = hash_token(token)
        now = self._clock()
        async with self._uow() as tx:
            user = await tx.user_by_email(address)
            subject = user.id if user else uuid.uuid4()
            enabled = await self._enabled(tx, subject)
            recent = await tx.count_email_tokens_since(
                subject, EmailTokenPurpose.MAGIC_LINK, now - dt.timedelta(hours=1)
            )
            if user is None:
                return
            refused = ""
            if not enabled:
                refused = "disabled"
            elif recent >= self._policy.max_per_hour:
                refused = "rate"
            if refused:
                await tx.record(
                    Change(
                        action="identity.user.magicLinkRequest",
                        resource_type="identity.user",
                        resource_id=str(user.id),
                        outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
                        request=request,
                        diff={"refused": refused},
                    ),
                    ctx,
                )
                return
            await tx.add_email_token(
                user.id, EmailTokenPurpose.MAGIC_LINK, token_hash, now, now + self._policy.ttl
            )
            await tx.enqueue_mail(
                self._mail.platform_org_id,
                user.email,
                "Your Helios sign-in link",
                "Someone asked to sign in to this Helios account with a link sent by e-mail. "
                f"Open this link within {_minutes(self._policy.ttl)} to sign in; it works "
                "once:\n\n"
                f"{self._mail.link(MAGIC_LINK_PAGE, token)}\n\n"
                "If it was not you, ignore this message: nobody can sign in without the link.\n",
            )
            await tx.record(
                Change(
                    action="identity.user.magicLinkRequest",
                    resource_type="identity.user",
                    resource_id=str(user.id),
                    request=request,
                ),
                ctx,
            )

    async def redeem(
        self, token: str, device_token: str, ctx: CallContext, request: Message | None
    ) -> SignInOutcome:
        """Use a magic-link token once: a session (method magic_link), or a second-factor
        challenge when the gate asks for one (`device_token`: a remembered device).

        Raises InvalidArgumentError (BAD_LINK) for an unknown, used, superseded or expired
        token, and FailedPreconditionError when magic links were disabled for the account since
        the link was mailed (the token is used up either way). Every failure on a known account
        is audited and in its login history."""
        now = self._clock()
        async with self._uow() as tx:
            user_id = await tx.redeem_email_token(
                hash_token(token), EmailTokenPurpose.MAGIC_LINK, now
            )
            user = await tx.user_by_id(user_id) if user_id else None
            if user is None:
                await self._opener.failed(
                    tx, None, SignInMethod.MAGIC_LINK, "bad_link", ctx, request
                )
                failure: Exception = InvalidArgumentError(BAD_LINK, field="token")
            elif not await self._enabled(tx, user.id):
                await self._opener.failed(
                    tx, user, SignInMethod.MAGIC_LINK, "magic_link_disabled", ctx, request
                )
                failure = FailedPreconditionError(MAGIC_LINK_DISABLED)
            else:
                pending = await self._gate.challenge(
                    tx, user, SignInMethod.MAGIC_LINK, device_token, ctx
                )
                if pending is not None:
                    return SignInOutcome(user=user, second_factor=pending)
                signed_in = await self._opener.open(tx, user, SignInMethod.MAGIC_LINK, ctx, request)
                return SignInOutcome(user=user, signed_in=signed_in)
        raise failure
