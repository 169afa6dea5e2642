"""All of identity's use cases, built together over one unit of work."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from helios.identity.domain.auth_config import DEFAULT_AUTH_CONFIG, AuthConfig
from helios.identity.domain.push import PushPolicy
from helios.identity.domain.throttle import ThrottlePolicy
from helios.identity.ports import (
    AuthConfigSource,
    Authorizer,
    Clock,
    PasswordHasher,
    PrincipalSigner,
    SecondFactorGate,
    SignInObserver,
    SubjectRights,
    UnitOfWork,
)
from helios.identity.ports.members import OrgUserTypes
from helios.identity.ports.mfa import RowSealer, StepUpIssuer
from helios.identity.service.account_mail import AccountMail
from helios.identity.service.accounts import AccountService
from helios.identity.service.api_keys import ApiKeyService
from helios.identity.service.auth_config import AuthConfigService
from helios.identity.service.device_alerts import DeviceAlerts
from helios.identity.service.impersonation import ImpersonationService
from helios.identity.service.login_history import HistoryPolicy, LoginHistory
from helios.identity.service.magic_links import MagicLinkPolicy, MagicLinkService
from helios.identity.service.members import MemberService
from helios.identity.service.mfa import MfaService
from helios.identity.service.opening import SessionOpener
from helios.identity.service.org_access import OrgAccess
from helios.identity.service.orgs import OrgService
from helios.identity.service.push import PushService
from helios.identity.service.remembered_devices import RememberedDevices
from helios.identity.service.second_factor import ChallengeGate
from helios.identity.service.second_factor_completion import SecondFactorService
from helios.identity.service.sessions import DEFAULT_IDLE_TIMEOUT, SessionService
from helios.identity.service.sign_in import SignInService
from helios.identity.service.step_up import StepUpService
from helios.identity.service.throttling import SignInGuard
from helios.kernel.errors import FailedPreconditionError
from helios.proto.common.v1 import principal_pb2

__all__ = ["IdentityServices", "NoSealer", "NoUserTypes", "RefuseAll", "StaticAuthConfig"]


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
    config: AuthConfigSource
    auth_config: AuthConfigService
    push: PushService
    mfa: MfaService
    step_up: StepUpService
    second_factor: SecondFactorService
    devices: RememberedDevices
    impersonation: ImpersonationService
    magic_links: MagicLinkService
    login_history: LoginHistory
    members: MemberService
    api_keys: ApiKeyService

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
        config: AuthConfigSource | None = None,
        push_policy: PushPolicy | None = None,
        totp_sealer: RowSealer | None = None,
        magic_link: MagicLinkPolicy | None = None,
        history: HistoryPolicy | None = None,
        idle_timeout: dt.timedelta = DEFAULT_IDLE_TIMEOUT,
        platform_org_id: str = "platform",
        auth_config_sealer: RowSealer | None = None,
        user_types: OrgUserTypes | None = None,
        step_up_issuer: StepUpIssuer | None = None,
    ) -> IdentityServices:
        """Wire the use cases together (defaults: the default throttle and mails, the
        second-factor gate of A3, an authorizer that refuses everything, the default provider
        configuration, no TOTP sealer: TOTP enrolment refused, the default magic-link and history
        policies, no authz user types: members cannot be added, no step-up issuer: step-up
        refused). Login history (S5) and new-device alerts (S4) always observe sign-ins, before
        any of `observers`."""
        authorizer = authorizer or RefuseAll()
        access = OrgAccess(authorizer)
        config = config or StaticAuthConfig(DEFAULT_AUTH_CONFIG)
        guard = SignInGuard(uow, clock, throttle or ThrottlePolicy())
        account_mail = account_mail or AccountMail()
        login_history = LoginHistory(uow, clock, authorizer, history)
        opener = SessionOpener(
            clock, session_ttl, (login_history, DeviceAlerts(clock, account_mail), *observers)
        )
        impersonation = ImpersonationService(uow, clock, opener, authorizer, platform_org_id)
        sessions = SessionService(
            uow, signer, clock, authorizer, config, impersonation, idle_timeout
        )
        devices = RememberedDevices(uow, clock, config)
        mfa = MfaService(uow, clock, totp_sealer or NoSealer())
        gate = gate or ChallengeGate(clock, config, devices)
        return cls(
            accounts=AccountService(uow, hasher, clock, guard, sessions, account_mail),
            sign_in=SignInService(uow, hasher, guard, opener, gate),
            sessions=sessions,
            orgs=OrgService(uow, clock, access, platform_org_id),
            opener=opener,
            guard=guard,
            authorizer=authorizer,
            config=config,
            auth_config=AuthConfigService(
                uow, clock, authorizer, auth_config_sealer or NoSealer(), platform_org_id
            ),
            push=PushService(uow, clock, push_policy or PushPolicy()),
            mfa=mfa,
            step_up=StepUpService(uow, clock, guard, mfa, step_up_issuer),
            second_factor=SecondFactorService(
                uow, clock, guard, opener, mfa, devices, account_mail
            ),
            devices=devices,
            impersonation=impersonation,
            magic_links=MagicLinkService(
                uow, clock, config, account_mail, opener, gate, magic_link
            ),
            login_history=login_history,
            members=MemberService(uow, clock, access, user_types or NoUserTypes()),
            api_keys=ApiKeyService(uow, clock, signer, access),
        )


class StaticAuthConfig:
    """An AuthConfigSource that never changes (tests, and before C1 is wired)."""

    def __init__(self, config: AuthConfig) -> None:
        self._config = config

    def current(self) -> AuthConfig:
        return self._config


class NoSealer:
    """A RowSealer for deployments without keyvault: TOTP enrolment is refused."""

    async def seal(self, table: str, column: str, row_id: str, plaintext: bytes) -> bytes:
        raise FailedPreconditionError("TOTP needs keyvault, which this deployment lacks")

    async def unseal(self, table: str, column: str, row_id: str, sealed: bytes) -> bytes:
        raise FailedPreconditionError("TOTP needs keyvault, which this deployment lacks")


class NoUserTypes:
    """OrgUserTypes without authz: no org has a user type, so no member can be added."""

    async def find(
        self, org_id: uuid.UUID, name: str, acting: principal_pb2.Principal | None
    ) -> str | None:
        return None

    async def assign(
        self,
        org_id: uuid.UUID,
        user_id: uuid.UUID,
        user_type_id: str,
        acting: principal_pb2.Principal | None,
    ) -> None:
        return None


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

    async def rights_of(self, user_id: str, org_id: str) -> SubjectRights:
        return SubjectRights()
