"""PostgreSQL rows of push 2FA (A3), mixed into identity's transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from helios.identity.domain.push import PushChallenge, PushDevice, PushState
from helios.identity.store.tables import push_challenges, push_devices
from helios.kernel.db import insert_unique
from helios.kernel.errors import AlreadyExistsError

__all__ = ["PushRows"]

# Serialises push-challenge creation per sign-in challenge (the second argument keeps these
# advisory locks apart from other users of hashtextextended).
_CREATE_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:id, 70))")


def _device(row: Any) -> PushDevice:
    return PushDevice(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        public_key=bytes(row.public_key),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


def _challenge(row: Any) -> PushChallenge:
    return PushChallenge(
        id=row.id,
        sign_in_challenge_id=row.sign_in_challenge_id,
        user_id=row.user_id,
        nonce=bytes(row.nonce),
        state=PushState(row.state),
        created_at=row.created_at,
        expires_at=row.expires_at,
        ip=row.ip,
        user_agent=row.user_agent,
        city=row.city,
        country=row.country,
        answered_at=row.answered_at,
        device_id=row.device_id,
        consumed_at=row.consumed_at,
    )


class PushRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession

    async def push_device_count(self, user_id: uuid.UUID) -> int:
        count: int = (
            await self._s.execute(select(func.count()).where(push_devices.c.user_id == user_id))
        ).scalar_one()
        return count

    async def consume_approved_push(self, challenge_id: uuid.UUID, now: dt.datetime) -> bool:
        consumed = await self._s.execute(
            update(push_challenges)
            .where(
                push_challenges.c.sign_in_challenge_id == challenge_id,
                push_challenges.c.state == PushState.APPROVED.value,
                push_challenges.c.consumed_at.is_(None),
                push_challenges.c.expires_at > now,
            )
            .values(consumed_at=now)
            .returning(push_challenges.c.id)
        )
        return consumed.first() is not None

    async def add_push_device(self, device: PushDevice) -> None:
        await insert_unique(
            self._s,
            push_devices.insert().values(
                id=device.id,
                user_id=device.user_id,
                name=device.name,
                public_key=device.public_key,
                created_at=device.created_at,
            ),
            AlreadyExistsError(
                "a push device with this public key is registered already", field="public_key"
            ),
        )

    async def push_device_by_id(self, device_id: uuid.UUID) -> PushDevice | None:
        row = (
            await self._s.execute(select(push_devices).where(push_devices.c.id == device_id))
        ).first()
        return _device(row) if row else None

    async def push_devices_of(self, user_id: uuid.UUID) -> list[PushDevice]:
        rows = await self._s.execute(
            select(push_devices)
            .where(push_devices.c.user_id == user_id)
            .order_by(push_devices.c.created_at, push_devices.c.id)
        )
        return [_device(row) for row in rows]

    async def remove_push_device(self, device_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        removed = await self._s.execute(
            delete(push_devices)
            .where(push_devices.c.id == device_id, push_devices.c.user_id == user_id)
            .returning(push_devices.c.id)
        )
        return removed.first() is not None

    async def add_push_challenge(self, challenge: PushChallenge) -> list[uuid.UUID]:
        await self._s.execute(_CREATE_LOCK, {"id": str(challenge.sign_in_challenge_id)})
        superseded = await self._s.execute(
            update(push_challenges)
            .where(
                push_challenges.c.sign_in_challenge_id == challenge.sign_in_challenge_id,
                push_challenges.c.state == PushState.PENDING.value,
            )
            .values(state=PushState.EXPIRED.value, answered_at=challenge.created_at)
            .returning(push_challenges.c.id)
        )
        superseded_ids = [row.id for row in superseded]
        await self._s.execute(
            push_challenges.insert().values(
                id=challenge.id,
                sign_in_challenge_id=challenge.sign_in_challenge_id,
                user_id=challenge.user_id,
                nonce=challenge.nonce,
                state=challenge.state.value,
                created_at=challenge.created_at,
                expires_at=challenge.expires_at,
                ip=challenge.ip[:64],
                user_agent=challenge.user_agent[:512],
                city=challenge.city[:100],
                country=challenge.country[:8],
            )
        )
        return superseded_ids

    async def count_push_challenges(self, sign_in_challenge_id: uuid.UUID) -> int:
        count: int = (
            await self._s.execute(
                select(func.count()).where(
                    push_challenges.c.sign_in_challenge_id == sign_in_challenge_id
                )
            )
        ).scalar_one()
        return count

    async def push_challenge_by_id(self, push_challenge_id: uuid.UUID) -> PushChallenge | None:
        row = (
            await self._s.execute(
                select(push_challenges).where(push_challenges.c.id == push_challenge_id)
            )
        ).first()
        return _challenge(row) if row else None

    async def pending_push_challenges_of(
        self, user_id: uuid.UUID, now: dt.datetime
    ) -> list[PushChallenge]:
        rows = await self._s.execute(
            select(push_challenges)
            .where(
                push_challenges.c.user_id == user_id,
                push_challenges.c.state == PushState.PENDING.value,
                push_challenges.c.expires_at > now,
            )
            .order_by(push_challenges.c.created_at.desc(), push_challenges.c.id)
        )
        return [_challenge(row) for row in rows]

    async def finish_push_challenge(
        self,
        push_challenge_id: uuid.UUID,
        state: PushState,
        at: dt.datetime,
        device_id: uuid.UUID | None = None,
    ) -> PushChallenge | None:
        conditions = [
            push_challenges.c.id == push_challenge_id,
            push_challenges.c.state == PushState.PENDING.value,
        ]
        if state is not PushState.EXPIRED:
            conditions.append(push_challenges.c.expires_at > at)
        row = (
            await self._s.execute(
                update(push_challenges)
                .where(*conditions)
                .values(state=state.value, answered_at=at, device_id=device_id)
                .returning(*push_challenges.c)
            )
        ).first()
        if row is not None and device_id is not None:
            await self._s.execute(
                update(push_devices).where(push_devices.c.id == device_id).values(last_used_at=at)
            )
        return _challenge(row) if row else None
