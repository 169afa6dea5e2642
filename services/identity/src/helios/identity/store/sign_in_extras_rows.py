"""PostgreSQL rows of magic links (A8), login history (S5) and known devices (S4)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, exists, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from helios.identity.domain.sign_in_records import (
    DeviceNovelty,
    DeviceSighting,
    LoginCursor,
    LoginEvent,
    LoginOutcome,
)
from helios.identity.store.tables import known_devices, login_events, memberships

__all__ = ["SignInExtrasRows"]

# Expired rows removed per write: enough to outpace the inserts, small enough to stay cheap.
_PRUNE_BATCH = 100


def _event(row: object) -> LoginEvent:
    return LoginEvent(
        id=row.id,  # type: ignore[attr-defined]
        user_id=row.user_id,  # type: ignore[attr-defined]
        occurred_at=row.occurred_at,  # type: ignore[attr-defined]
        method=row.method,  # type: ignore[attr-defined]
        outcome=LoginOutcome(row.outcome),  # type: ignore[attr-defined]
        ip=row.ip,  # type: ignore[attr-defined]
        city=row.city,  # type: ignore[attr-defined]
        country=row.country,  # type: ignore[attr-defined]
        user_agent=row.user_agent,  # type: ignore[attr-defined]
        device_id=row.device_id,  # type: ignore[attr-defined]
        failure_reason=row.failure_reason,  # type: ignore[attr-defined]
    )


class SignInExtrasRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession

    async def add_login_event(
        self, event: LoginEvent, keep_after: dt.datetime, keep_per_user: int
    ) -> None:
        await self._s.execute(
            login_events.insert().values(
                user_id=event.user_id,
                occurred_at=event.occurred_at,
                ip=event.ip[:64],
                city=event.city[:100],
                country=event.country[:2],
                user_agent=event.user_agent[:512],
                device_id=event.device_id[:64],
                method=event.method[:32],
                outcome=event.outcome.value,
                failure_reason=event.failure_reason[:64],
            )
        )
        beyond_cap = (
            select(login_events.c.id)
            .where(login_events.c.user_id == event.user_id)
            .order_by(login_events.c.occurred_at.desc(), login_events.c.id.desc())
            .offset(keep_per_user)
        )
        expired = (
            select(login_events.c.id)
            .where(login_events.c.occurred_at <= keep_after)
            .limit(_PRUNE_BATCH)
        )
        await self._s.execute(delete(login_events).where(login_events.c.id.in_(beyond_cap)))
        await self._s.execute(delete(login_events).where(login_events.c.id.in_(expired)))

    async def login_events_of(
        self, user_id: uuid.UUID, limit: int, after: LoginCursor | None
    ) -> list[LoginEvent]:
        query = select(login_events).where(login_events.c.user_id == user_id)
        if after is not None:
            query = query.where(
                tuple_(login_events.c.occurred_at, login_events.c.id)
                < tuple_(after.occurred_at, after.id)
            )
        rows = await self._s.execute(
            query.order_by(login_events.c.occurred_at.desc(), login_events.c.id.desc()).limit(limit)
        )
        return [_event(row) for row in rows]

    async def see_device(self, sighting: DeviceSighting, keep_per_user: int) -> DeviceNovelty:
        # One transaction-scoped advisory lock per user: concurrent sign-ins of the same user
        # queue here, so "had no device before" is decided once.
        await self._s.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 8))"),
            {"key": f"known_devices:{sighting.user_id}"},
        )
        mine = known_devices.c.user_id == sighting.user_id
        seen = (
            await self._s.execute(
                select(
                    func.count().label("devices"),
                    func.coalesce(
                        func.bool_or(known_devices.c.device_id == sighting.device_id), False
                    ).label("known"),
                ).where(mine)
            )
        ).one()
        place = {
            "ip": sighting.ip[:64],
            "city": sighting.city[:100],
            "country": sighting.country[:2],
            "last_seen_at": sighting.at,
        }
        await self._s.execute(
            pg_insert(known_devices)
            .values(
                user_id=sighting.user_id,
                device_id=sighting.device_id,
                browser=sighting.browser[:100],
                first_seen_at=sighting.at,
                **place,
            )
            .on_conflict_do_update(
                index_elements=[known_devices.c.user_id, known_devices.c.device_id], set_=place
            )
        )
        stale = (
            select(known_devices.c.device_id)
            .where(mine)
            .order_by(known_devices.c.last_seen_at.desc(), known_devices.c.device_id)
            .offset(keep_per_user)
        )
        await self._s.execute(
            delete(known_devices).where(mine, known_devices.c.device_id.in_(stale))
        )
        if seen.known:
            return DeviceNovelty.KNOWN
        return DeviceNovelty.NEW if seen.devices else DeviceNovelty.FIRST

    async def is_org_member(self, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        found: bool = (
            await self._s.execute(
                select(
                    exists().where(memberships.c.org_id == org_id, memberships.c.user_id == user_id)
                )
            )
        ).scalar_one()
        return found
