"""Remembered devices (A9): remembering a browser after a second factor, recognising it at the
next sign-in, listing and forgetting one's own."""

from __future__ import annotations

import datetime as dt
import uuid

from google.protobuf.message import Message

from helios.identity.domain.model import User
from helios.identity.domain.remembered_device import RememberedDevice, new_device_token
from helios.identity.domain.tokens import hash_token
from helios.identity.ports import AuthConfigSource, Clock, IdentityTransaction, UnitOfWork
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError, NotFoundError

__all__ = ["RememberedDevices"]


class RememberedDevices:
    """Device tokens live `config.current().remember_device_days` days; only their hash is
    stored."""

    def __init__(self, uow: UnitOfWork, clock: Clock, config: AuthConfigSource) -> None:
        self._uow = uow
        self._clock = clock
        self._config = config

    async def remember(
        self, tx: IdentityTransaction, user: User, ctx: CallContext, request: Message | None
    ) -> str:
        """Remember the calling browser for `user` (audited) and return its token, shown once."""
        now = self._clock()
        token = new_device_token()
        device = RememberedDevice(
            id=uuid.uuid4(),
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + dt.timedelta(days=self._config.current().remember_device_days),
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        await tx.add_remembered_device(device)
        await tx.record(
            Change(
                action="identity.device.remember",
                resource_type="identity.device",
                resource_id=str(device.id),
                actor_id=str(user.id),
                request=request,
                diff={"expires_at": device.expires_at.isoformat()},
            ),
            ctx,
        )
        return token

    async def recognise(
        self, tx: IdentityTransaction, user: User, token: str, ctx: CallContext
    ) -> bool:
        """True when `token` is an active remembered device of `user`; its use is then recorded
        (last use, IP) and audited. Any other token (unknown, revoked, expired, someone else's)
        answers False."""
        if not token:
            return False
        now = self._clock()
        device = await tx.remembered_device_by_token_hash(hash_token(token))
        if device is None or device.user_id != user.id or not device.is_active(now):
            return False
        await tx.touch_remembered_device(device.id, now, ctx.ip)
        await tx.record(
            Change(
                action="identity.device.use",
                resource_type="identity.device",
                resource_id=str(device.id),
                actor_id=str(user.id),
                diff={"ip": ctx.ip},
            ),
            ctx,
        )
        return True

    async def list_own(self, ctx: CallContext) -> list[RememberedDevice]:
        """The caller's active devices, newest first."""
        user_id = uuid.UUID(ctx.require_principal().actor_id)
        async with self._uow() as tx:
            return await tx.remembered_devices_of(user_id, self._clock())

    async def revoke_own(self, device_id: str, ctx: CallContext, request: Message | None) -> None:
        """Forget one of the caller's devices (audited); NotFoundError when the caller has no
        such active device (someone else's included)."""
        user_id = uuid.UUID(ctx.require_principal().actor_id)
        try:
            parsed = uuid.UUID(device_id)
        except ValueError:
            raise InvalidArgumentError("device_id is not a UUID", field="device_id") from None
        async with self._uow() as tx:
            revoked = await tx.revoke_remembered_device(user_id, parsed, self._clock())
            if revoked:
                await tx.record(
                    Change(
                        action="identity.device.revoke",
                        resource_type="identity.device",
                        resource_id=str(parsed),
                        request=request,
                    ),
                    ctx,
                )
        if not revoked:
            raise NotFoundError("no such remembered device")
