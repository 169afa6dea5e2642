"""Enrolling one's own second factors (A3): TOTP with its first backup codes, new backup codes,
the status; and checking TOTP and backup codes for CompleteSecondFactor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from google.protobuf.message import Message

from helios.identity.domain.backup_codes import hash_backup_code, new_backup_codes
from helios.identity.domain.model import User
from helios.identity.domain.push import PushDevice
from helios.identity.domain.totp import (
    TotpCredential,
    matching_step,
    new_totp_secret,
    provisioning_uri,
    qr_svg,
)
from helios.identity.ports import Clock, IdentityTransaction, UnitOfWork
from helios.identity.ports.mfa import RowSealer
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from helios.proto.audit.v1 import events_pb2

__all__ = ["MfaService", "MfaStatus", "TotpEnrollment"]

# Where TOTP secrets are sealed (the associated data of the per-row encryption): one label for
# the pending and the confirmed secret, so that confirming may move the value between columns.
TOTP_TABLE = "identity.totp_credentials"
TOTP_COLUMN = "secret"
WRONG_CODE = "the code is wrong or was already used"


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    """What an authenticator app scans; shown once."""

    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True, slots=True)
class MfaStatus:
    """The caller's second factors."""

    totp_enrolled: bool
    backup_codes_remaining: int
    push_devices: tuple[PushDevice, ...]


class MfaService:
    """One's own TOTP and backup codes. An impersonating admin may not change them."""

    def __init__(self, uow: UnitOfWork, clock: Clock, sealer: RowSealer) -> None:
        self._uow = uow
        self._clock = clock
        self._sealer = sealer

    async def enroll_totp(self, ctx: CallContext, request: Message | None) -> TotpEnrollment:
        """Make a new pending secret (an earlier confirmed one stays in use until this one is
        confirmed) and return its otpauth URI and QR code."""
        user = await self._own_user(ctx)
        secret = new_totp_secret()
        sealed = await self._sealer.seal(TOTP_TABLE, TOTP_COLUMN, str(user.id), secret.encode())
        async with self._uow() as tx:
            await tx.set_pending_totp(user.id, sealed)
            await tx.record(
                Change(
                    action="identity.mfa.totpEnroll",
                    resource_type="identity.user",
                    resource_id=str(user.id),
                    request=request,
                ),
                ctx,
            )
        uri = provisioning_uri(secret, user.email)
        return TotpEnrollment(otpauth_uri=uri, qr_svg=qr_svg(uri))

    async def confirm_totp(self, code: str, ctx: CallContext, request: Message | None) -> list[str]:
        """Activate the pending secret with a code of it and return 10 new backup codes (they
        replace any earlier ones). InvalidArgumentError for a wrong code (audited),
        FailedPreconditionError when no enrolment is pending."""
        user = await self._own_user(ctx)
        async with self._uow() as tx:
            credential = await tx.totp_of(user.id)
        if credential is None or credential.pending_secret is None:
            raise FailedPreconditionError("no TOTP enrolment is pending: call EnrollTotp first")
        secret = await self._unseal(user.id, credential.pending_secret)
        step = matching_step(secret, code.strip(), self._clock())
        codes = new_backup_codes()
        async with self._uow() as tx:
            confirmed = step is not None and await tx.confirm_totp(user.id, step, self._clock())
            if confirmed:
                await self._replace_backup_codes(tx, user.id, codes)
            await tx.record(
                Change(
                    action="identity.mfa.totpConfirm",
                    resource_type="identity.user",
                    resource_id=str(user.id),
                    outcome=events_pb2.AUDIT_OUTCOME_SUCCESS
                    if confirmed
                    else events_pb2.AUDIT_OUTCOME_FAILURE,
                    request=request,
                ),
                ctx,
            )
        if not confirmed:
            raise InvalidArgumentError(WRONG_CODE, field="code")
        return codes

    async def regenerate_backup_codes(self, ctx: CallContext, request: Message | None) -> list[str]:
        """Replace every backup code of the caller with 10 new ones."""
        user = await self._own_user(ctx)
        codes = new_backup_codes()
        async with self._uow() as tx:
            await self._replace_backup_codes(tx, user.id, codes)
            await tx.record(
                Change(
                    action="identity.mfa.backupCodesRegenerate",
                    resource_type="identity.user",
                    resource_id=str(user.id),
                    request=request,
                ),
                ctx,
            )
        return codes

    async def status(self, ctx: CallContext) -> MfaStatus:
        """The caller's TOTP, backup codes left and push devices."""
        user_id = uuid.UUID(ctx.require_principal().actor_id)
        async with self._uow() as tx:
            credential = await tx.totp_of(user_id)
            remaining = await tx.backup_codes_remaining(user_id)
            devices = await tx.push_devices_of(user_id)
        return MfaStatus(
            totp_enrolled=credential is not None and credential.confirmed,
            backup_codes_remaining=remaining,
            push_devices=tuple(devices),
        )

    async def totp_step(self, credential: TotpCredential | None, code: str) -> int | None:
        """The time step `code` is a code of under the user's confirmed secret, or None (no
        confirmed secret, wrong code). Whether the step was used already is the caller's check
        (`tx.use_totp_step`). Call outside a transaction: it may call keyvault."""
        if credential is None or credential.secret is None or not credential.confirmed:
            return None
        secret = await self._unseal(credential.user_id, credential.secret)
        return matching_step(secret, code.strip(), self._clock())

    async def use_backup_code(self, tx: IdentityTransaction, user_id: uuid.UUID, code: str) -> bool:
        """Spend one of the user's unused backup codes; False when `code` is none of them."""
        return await tx.use_backup_code(user_id, hash_backup_code(user_id, code), self._clock())

    async def _replace_backup_codes(
        self, tx: IdentityTransaction, user_id: uuid.UUID, codes: list[str]
    ) -> None:
        hashes = [hash_backup_code(user_id, code) for code in codes]
        await tx.replace_backup_codes(user_id, hashes, self._clock())

    async def _unseal(self, user_id: uuid.UUID, sealed: bytes) -> str:
        plain = await self._sealer.unseal(TOTP_TABLE, TOTP_COLUMN, str(user_id), sealed)
        return plain.decode()

    async def _own_user(self, ctx: CallContext) -> User:
        """The calling user, acting as themself."""
        principal = ctx.require_principal()
        if principal.impersonator_id:
            raise PermissionDeniedError("an impersonation may not change second factors")
        async with self._uow() as tx:
            user = await tx.user_by_id(uuid.UUID(principal.actor_id))
        if user is None:
            raise UnauthenticatedError("this account no longer exists")
        return user
