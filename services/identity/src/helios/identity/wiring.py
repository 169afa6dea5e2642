"""Identity's composition root: the only place its adapters are built."""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from helios.identity.argon2_hasher import Argon2Hasher
from helios.identity.authz_check import GrpcAuthorizer
from helios.identity.authz_user_types import GrpcUserTypes
from helios.identity.domain.permissions import IDENTITY_PERMISSIONS
from helios.identity.domain.push import PushPolicy
from helios.identity.domain.throttle import ThrottlePolicy
from helios.identity.events.auth_config_listener import AuthConfigListener
from helios.identity.keyvault_sealer import KeyvaultRowSealer
from helios.identity.mail import KeyvaultDkimKeys, MailSender, SmtpRelay
from helios.identity.ports import AuthConfigSource, UnitOfWork
from helios.identity.rpc.servicer import IdentityServicer
from helios.identity.service.account_mail import AccountMail
from helios.identity.service.auth_config import LiveAuthConfig
from helios.identity.service.bundle import IdentityServices
from helios.identity.service.login_history import HistoryPolicy
from helios.identity.service.magic_links import MagicLinkPolicy
from helios.identity.settings import IdentitySettings
from helios.identity.store import tables
from helios.identity.store.mail import MailOutbox
from helios.identity.store.throttle_cleanup import ThrottleCleanup, throttle_cleanup_task
from helios.kernel.clients import secure_channel
from helios.proto.keyvault.v1 import keyvault_pb2_grpc

if TYPE_CHECKING:
    from helios.proto.keyvault.v1.keyvault_pb2_grpc import KeyvaultServiceAsyncStub
from helios.identity.store.postgres import postgres_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.migrations import migrate
from helios.kernel.permission_catalog import registration_task
from helios.kernel.principal import AssertionSigner, load_private_key
from helios.kernel.runtime import ServiceRuntime, cert_files
from helios.kernel.step_up import StepUpSigner
from helios.proto.identity.v1 import identity_pb2, identity_pb2_grpc

__all__ = [
    "NAME",
    "build_service",
    "keyvault_stub",
    "mail_sender",
    "migrate_schema",
    "wire",
]

NAME = "identity"
TOTP_KEY_NAME = "identity-totp"
"""The platform org's keyvault encryption key that wraps the data keys of TOTP secrets."""
AUTH_CONFIG_KEY_NAME = "identity-platform-settings"
"""The platform org's keyvault encryption key that wraps the data keys of OIDC client secrets."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _unit_of_work(runtime: ServiceRuntime) -> UnitOfWork:
    return postgres_unit_of_work(
        runtime.sessions, AuditRecorder(NAME, tables.outbox), _now, on_commit=runtime.relay.notify
    )


def build_service(
    settings: IdentitySettings, runtime: ServiceRuntime, config: AuthConfigSource | None = None
) -> IdentityServices:
    """The use cases over PostgreSQL, argon2id and the assertion signer; `config` is the
    provider configuration in force (the default one when None, as for the seed command)."""
    uow = _unit_of_work(runtime)
    hasher = Argon2Hasher(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    signing_key = load_private_key(settings.principal_signing_key_file)
    signer = AssertionSigner(signing_key)
    throttle = ThrottlePolicy(
        max_failures_per_account=settings.signin_max_failures_per_account,
        max_failures_per_ip=settings.signin_max_failures_per_ip,
        window=dt.timedelta(seconds=settings.signin_failure_window_seconds),
        lockout=dt.timedelta(seconds=settings.signin_lockout_seconds),
    )
    account_mail = AccountMail(
        public_url=settings.public_url,
        platform_org_id=settings.mail_platform_org,
        verify_ttl=dt.timedelta(seconds=settings.email_verification_ttl_seconds),
        reset_ttl=dt.timedelta(seconds=settings.password_reset_ttl_seconds),
        reset_max_per_hour=settings.password_reset_max_per_hour,
    )
    keyvault = keyvault_stub(settings)  # one channel for every platform-org secret
    return IdentityServices.build(
        uow,
        hasher,
        signer,
        _now,
        dt.timedelta(seconds=settings.session_ttl_seconds),
        throttle=throttle,
        account_mail=account_mail,
        authorizer=GrpcAuthorizer(settings.authz_target, cert_files(settings)),
        user_types=GrpcUserTypes(settings.authz_target, cert_files(settings), signer),
        totp_sealer=KeyvaultRowSealer(keyvault, settings.platform_org_id, TOTP_KEY_NAME),
        idle_timeout=dt.timedelta(seconds=settings.session_idle_timeout_seconds),
        platform_org_id=settings.platform_org_id,
        config=config,
        step_up_issuer=StepUpSigner(signing_key),
        auth_config_sealer=KeyvaultRowSealer(
            keyvault, settings.platform_org_id, AUTH_CONFIG_KEY_NAME
        ),
        magic_link=MagicLinkPolicy(
            ttl=dt.timedelta(seconds=settings.magic_link_ttl_seconds),
            max_per_hour=settings.magic_link_max_per_hour,
        ),
        history=HistoryPolicy(
            retention=dt.timedelta(days=settings.login_history_retention_days),
            max_events_per_user=settings.login_history_max_per_user,
        ),
        push_policy=PushPolicy(
            ttl=dt.timedelta(seconds=settings.push_challenge_ttl_seconds),
            max_per_sign_in=settings.push_max_per_sign_in,
            watch_poll=dt.timedelta(seconds=settings.push_watch_poll_seconds),
        ),
    )


def wire(settings: IdentitySettings) -> ServiceRuntime:
    """The whole identity process, not yet started."""
    runtime = ServiceRuntime.build(NAME, settings, tables.outbox)
    # The provider configuration (C1) as this replica uses it, reloaded on every change.
    live_config = LiveAuthConfig(_unit_of_work(runtime))
    runtime.grpc.add_startup(live_config.reload)  # no RPC is served before it is read
    runtime.grpc.add_background(
        AuthConfigListener(
            runtime.bus, live_config, refresh_seconds=settings.auth_config_refresh_seconds
        ).run
    )
    servicer = IdentityServicer(build_service(settings, runtime, live_config))
    runtime.grpc.add_service(
        identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name,
        lambda server: identity_pb2_grpc.add_IdentityServiceServicer_to_server(servicer, server),
    )
    runtime.grpc.add_background(
        registration_task(NAME, IDENTITY_PERMISSIONS, settings.authz_target, cert_files(settings))
    )
    runtime.grpc.add_background(mail_sender(settings, runtime).run)
    runtime.grpc.add_background(
        throttle_cleanup_task(
            ThrottleCleanup(
                runtime.sessions,
                _now,
                dt.timedelta(seconds=settings.signin_failure_window_seconds),
            ),
            settings.signin_throttle_cleanup_seconds,
        )
    )
    return runtime


def keyvault_stub(settings: IdentitySettings) -> KeyvaultServiceAsyncStub:
    """A keyvault client calling as this service's mTLS identity."""
    stub: KeyvaultServiceAsyncStub = keyvault_pb2_grpc.KeyvaultServiceStub(
        secure_channel(settings.keyvault_target, cert_files(settings))
    )
    return stub


def mail_sender(settings: IdentitySettings, runtime: ServiceRuntime) -> MailSender:
    """The outbound mail sender: the mail outbox, the SMTP relay, DKIM keys in keyvault."""
    return MailSender(
        MailOutbox(runtime.sessions),
        SmtpRelay(settings.smtp_host, settings.smtp_port, starttls=settings.smtp_starttls),
        KeyvaultDkimKeys(keyvault_stub(settings)),
        mail_from=settings.mail_from,
        dkim_selector=settings.mail_dkim_selector,
    )


def migrate_schema(settings: IdentitySettings) -> None:
    """Upgrade the identity schema to head."""
    location = Path(str(files("helios.identity.store") / "migrations"))
    migrate(settings.database_url.get_secret_value(), tables.SCHEMA, location, tables.metadata)
