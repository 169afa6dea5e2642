"""PostgreSQL rows of second factors (A3, A9), mixed into identity's transaction."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from helios.identity.domain.email_otp import EmailOtp
from helios.identity.domain.model import SignInMethod
from helios.identity.domain.remembered_device import RememberedDevice
from helios.identity.domain.second_factor import SignInChallenge
from helios.identity.domain.totp import TotpCredential
from helios.identity.store.tables import (
    backup_codes,
    email_otps,
    remembered_devices,
    sign_in_challenges,
    totp_credentials,
)

__all__ = ["MfaRows"]


class MfaRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession

    # --- sign-in challenges -------------------------------------------------------------------

    async def sign_in_challenge_by_token_hash(self, token_hash: bytes) -> SignInChallenge | None:
        return await self._challenge_where(sign_in_challenges.c.token_hash == token_hash)

    async def sign_in_challenge_by_id(self, challenge_id: uuid.UUID) -> SignInChallenge | None:
        return await self._challenge_where(sign_in_challenges.c.id == challenge_id)

    async def _challenge_where(self, condition: ColumnElement[bool]) -> SignInChallenge | None:
        row = (await self._s.execute(select(sign_in_challenges).where(condition))).first()
        if row is None:
            return None
        return SignInChallenge(
            id=row.id,
            user_id=row.user_id,
            first_factor=SignInMethod(row.first_factor),
            methods=tuple(SignInMethod(method) for method in row.methods),
            created_at=row.created_at,
            expires_at=row.expires_at,
            ip=row.ip,
            user_agent=row.user_agent,
            attempts=row.attempts,
            completed_at=row.completed_at,
        )

    async def add_sign_in_challenge(self, challenge: SignInChallenge, token_hash: bytes) -> None:
        await self._s.execute(
            sign_in_challenges.insert().values(
                id=challenge.id,
                token_hash=token_hash,
                user_id=challenge.user_id,
                first_factor=challenge.first_factor.value,
                methods=[method.value for method in challenge.methods],
                created_at=challenge.created_at,
                expires_at=challenge.expires_at,
                ip=challenge.ip[:64],
                user_agent=challenge.user_agent[:512],
                attempts=challenge.attempts,
                completed_at=challenge.completed_at,
            )
        )

    async def count_challenge_failure(self, challenge_id: uuid.UUID) -> int:
        attempts: int | None = (
            await self._s.execute(
                update(sign_in_challenges)
                .where(sign_in_challenges.c.id == challenge_id)
                .values(attempts=sign_in_challenges.c.attempts + 1)
                .returning(sign_in_challenges.c.attempts)
            )
        ).scalar()
        return attempts or 0

    async def complete_sign_in_challenge(
        self, challenge_id: uuid.UUID, now: dt.datetime, max_attempts: int
    ) -> bool:
        result = await self._s.execute(
            update(sign_in_challenges)
            .where(
                sign_in_challenges.c.id == challenge_id,
                sign_in_challenges.c.completed_at.is_(None),
                sign_in_challenges.c.expires_at > now,
                sign_in_challenges.c.attempts < max_attempts,
            )
            .values(completed_at=now)
            .returning(sign_in_challenges.c.id)
        )
        return result.first() is not None

    # --- e-mail OTPs --------------------------------------------------------------------------

    async def put_email_otp(
        self, challenge_id: uuid.UUID, code_hash: bytes, expires_at: dt.datetime
    ) -> int:
        statement = pg_insert(email_otps).values(
            challenge_id=challenge_id, code_hash=code_hash, expires_at=expires_at, sends=1
        )
        sends: int = (
            await self._s.execute(
                statement.on_conflict_do_update(
                    index_elements=[email_otps.c.challenge_id],
                    set_={
                        "code_hash": statement.excluded.code_hash,
                        "expires_at": statement.excluded.expires_at,
                        "sends": email_otps.c.sends + 1,
                    },
                ).returning(email_otps.c.sends)
            )
        ).scalar_one()
        return sends

    async def email_otp_of(self, challenge_id: uuid.UUID) -> EmailOtp | None:
        row = (
            await self._s.execute(
                select(email_otps).where(email_otps.c.challenge_id == challenge_id)
            )
        ).first()
        if row is None:
            return None
        return EmailOtp(
            challenge_id=row.challenge_id,
            code_hash=row.code_hash,
            expires_at=row.expires_at,
            sends=row.sends,
        )

    # --- TOTP ---------------------------------------------------------------------------------

    async def totp_of(self, user_id: uuid.UUID) -> TotpCredential | None:
        row = (
            await self._s.execute(
                select(totp_credentials).where(totp_credentials.c.user_id == user_id)
            )
        ).first()
        if row is None:
            return None
        return TotpCredential(
            user_id=row.user_id,
            secret=row.secret,
            pending_secret=row.pending_secret,
            confirmed_at=row.confirmed_at,
            last_used_step=row.last_used_step,
        )

    async def set_pending_totp(self, user_id: uuid.UUID, sealed_secret: bytes) -> None:
        statement = pg_insert(totp_credentials).values(
            user_id=user_id, pending_secret=sealed_secret
        )
        await self._s.execute(
            statement.on_conflict_do_update(
                index_elements=[totp_credentials.c.user_id],
                set_={"pending_secret": statement.excluded.pending_secret},
            )
        )

    async def confirm_totp(self, user_id: uuid.UUID, step: int, at: dt.datetime) -> bool:
        result = await self._s.execute(
            update(totp_credentials)
            .where(
                totp_credentials.c.user_id == user_id,
                totp_credentials.c.pending_secret.is_not(None),
            )
            .values(
                secret=totp_credentials.c.pending_secret,
                pending_secret=None,
                confirmed_at=at,
                last_used_step=step,
            )
            .returning(totp_credentials.c.user_id)
        )
        return result.first() is not None

    async def use_totp_step(self, user_id: uuid.UUID, step: int) -> bool:
        result = await self._s.execute(
            update(totp_credentials)
            .where(
                totp_credentials.c.user_id == user_id,
                or_(
                    totp_credentials.c.last_used_step.is_(None),
                    totp_credentials.c.last_used_step < step,
                ),
            )
            .values(last_used_step=step)
            .returning(totp_credentials.c.user_id)
        )
        return result.first() is not None

    # --- backup codes -------------------------------------------------------------------------

    async def replace_backup_codes(
        self, user_id: uuid.UUID, code_hashes: list[bytes], at: dt.datetime
    ) -> None:
        await self._s.execute(delete(backup_codes).where(backup_codes.c.user_id == user_id))
        await self._s.execute(
            backup_codes.insert(),
            [{"user_id": user_id, "code_hash": h, "created_at": at} for h in code_hashes],
        )

    async def use_backup_code(self, user_id: uuid.UUID, code_hash: bytes, at: dt.datetime) -> bool:
        result = await self._s.execute(
            update(backup_codes)
            .where(
                backup_codes.c.user_id == user_id,
                backup_codes.c.code_hash == code_hash,
                backup_codes.c.used_at.is_(None),
            )
            .values(used_at=at)
            .returning(backup_codes.c.user_id)
        )
        return result.first() is not None

    async def backup_codes_remaining(self, user_id: uuid.UUID) -> int:
        count: int = (
            await self._s.execute(
                select(func.count()).where(
                    backup_codes.c.user_id == user_id, backup_codes.c.used_at.is_(None)
                )
            )
        ).scalar_one()
        return count

    # --- remembered devices (A9) --------------------------------------------------------------

    async def add_remembered_device(self, device: RememberedDevice) -> None:
        await self._s.execute(
            remembered_devices.insert().values(
                id=device.id,
                user_id=device.user_id,
                token_hash=device.token_hash,
                created_at=device.created_at,
                expires_at=device.expires_at,
                ip=device.ip[:64],
                user_agent=device.user_agent[:512],
                last_used_at=device.last_used_at,
                last_used_ip=device.last_used_ip,
                revoked_at=device.revoked_at,
            )
        )

    async def remembered_device_by_token_hash(self, token_hash: bytes) -> RememberedDevice | None:
        row = (
            await self._s.execute(
                select(remembered_devices).where(remembered_devices.c.token_hash == token_hash)
            )
        ).first()
        return _device(row) if row else None

    async def touch_remembered_device(self, device_id: uuid.UUID, at: dt.datetime, ip: str) -> None:
        await self._s.execute(
            update(remembered_devices)
            .where(remembered_devices.c.id == device_id)
            .values(last_used_at=at, last_used_ip=ip[:64])
        )

    async def remembered_devices_of(
        self, user_id: uuid.UUID, now: dt.datetime
    ) -> list[RememberedDevice]:
        rows = (
            await self._s.execute(
                select(remembered_devices)
                .where(
                    remembered_devices.c.user_id == user_id,
                    remembered_devices.c.revoked_at.is_(None),
                    remembered_devices.c.expires_at > now,
                )
                .order_by(remembered_devices.c.created_at.desc(), remembered_devices.c.id)
            )
        ).all()
        return [_device(row) for row in rows]

    async def revoke_remembered_device(
        self, user_id: uuid.UUID, device_id: uuid.UUID, at: dt.datetime
    ) -> bool:
        result = await self._s.execute(
            update(remembered_devices)
            .where(
                remembered_devices.c.id == device_id,
                remembered_devices.c.user_id == user_id,
                remembered_devices.c.revoked_at.is_(None),
                remembered_devices.c.expires_at > at,
            )
            .values(revoked_at=at)
            .returning(remembered_devices.c.id)
        )
        return result.first() is not None


def _device(row: object) -> RememberedDevice:
    return RememberedDevice(
        id=row.id,  # type: ignore[attr-defined]
        user_id=row.user_id,  # type: ignore[attr-defined]
        token_hash=row.token_hash,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        expires_at=row.expires_at,  # type: ignore[attr-defined]
        ip=row.ip,  # type: ignore[attr-defined]
        user_agent=row.user_agent,  # type: ignore[attr-defined]
        last_used_at=row.last_used_at,  # type: ignore[attr-defined]
        last_used_ip=row.last_used_ip,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
    )
