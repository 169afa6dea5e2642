"""All of identity's use cases, built together over one unit of work."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from helios.identity.domain.throttle import ThrottlePolicy
from helios.identity.ports import (
    Authorizer,
    Clock,
    PasswordHasher,
    PrincipalSigner,
    SecondFactorGate,
    SignInObserver,
    UnitOfWork,
)
from helios.identity.service.account_mail import AccountMail
from helios.identity.service.accounts import AccountService
from helios.identity.service.opening import SessionOpener
from helios.identity.service.orgs import OrgService
from helios.identity.service.sessions import SessionService
from helios.identity.service.sign_in import NoSecondFactor, SignInService
from helios.identity.service.throttling import SignInGuard
from helios.proto.common.v1 import principal_pb2

__all__ = ["IdentityServices", "RefuseAll"]


@dataclass(frozen=True, slots=True)
class IdentityServices:
    """The use cases the RPC handlers and the seed command call."""

    accounts: AccountService
    sign_in: SignInService
    sessions: SessionService
    orgs: OrgService
    opener: SessionOpener
    guard: SignInGuard
    authorizer: Authorizer

    @classmethod
    def build(
        cls,
        uow: UnitOfWork,
        hasher: PasswordHasher,
        signer: PrincipalSigner,
        clock: Clock,
        session_ttl: dt.timedelta,
        *,
        throttle: ThrottlePolicy | None = None,
        account_mail: AccountMail | None = None,
        gate: SecondFactorGate | None = None,
        observers: Sequence[SignInObserver] = (),
        authorizer: Authorizer | None = None,
    ) -> IdentityServices:
        """Wire the use cases together (defaults: the default throttle and mails, no second
        factor, no observers, an authorizer that refuses everything)."""
        authorizer = authorizer or RefuseAll()
        guard = SignInGuard(uow, clock, throttle or ThrottlePolicy())
        opener = SessionOpener(clock, session_ttl, observers)
        sessions = SessionService(uow, signer, clock)
        return cls(
            accounts=AccountService(
                uow, hasher, clock, guard, sessions, account_mail or AccountMail()
            ),
            sign_in=SignInService(uow, hasher, guard, opener, gate or NoSecondFactor()),
            sessions=sessions,
            orgs=OrgService(uow, clock),
            opener=opener,
            guard=guard,
            authorizer=authorizer,
        )


class RefuseAll:
    """An Authorizer that allows nothing: admin use cases stay shut until authz is wired."""

    async def allowed(
        self,
        principal: principal_pb2.Principal,
        permission: str,
        *,
        org_id: str = "",
        owner_id: str = "",
    ) -> bool:
        return False
