"""PostgreSQL rows of org memberships and org sign-in policies."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from helios.identity.domain.members import MemberCursor, Membership
from helios.identity.domain.model import Org, OrgAuthPolicy, User
from helios.identity.store.tables import memberships, orgs, sessions, users
from helios.kernel.db import insert_unique
from helios.kernel.errors import AlreadyExistsError

__all__ = ["MemberRows"]


def _org(row: object) -> Org:
    return Org(
        id=row.id,  # type: ignore[attr-defined]
        slug=row.slug,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        auth_policy=OrgAuthPolicy(
            require_mfa=row.require_mfa,  # type: ignore[attr-defined]
            magic_link_enabled=row.magic_link_enabled,  # type: ignore[attr-defined]
        ),
    )


def _membership(row: object) -> Membership:
    return Membership(
        org_id=row.org_id,  # type: ignore[attr-defined]
        user_id=row.user_id,  # type: ignore[attr-defined]
        user_type=row.user_type,  # type: ignore[attr-defined]
        joined_at=row.joined_at,  # type: ignore[attr-defined]
    )


class MemberRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession

    async def org_by_id(self, org_id: uuid.UUID, *, lock: bool = False) -> Org | None:
        query = select(orgs).where(orgs.c.id == org_id)
        if lock:
            query = query.with_for_update()
        row = (await self._s.execute(query)).first()
        return _org(row) if row else None

    async def membership(self, org_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        row = (
            await self._s.execute(
                select(memberships).where(
                    memberships.c.org_id == org_id, memberships.c.user_id == user_id
                )
            )
        ).first()
        return _membership(row) if row else None

    async def add_membership(self, membership: Membership) -> None:
        await insert_unique(
            self._s,
            memberships.insert().values(
                org_id=membership.org_id,
                user_id=membership.user_id,
                user_type=membership.user_type,
                joined_at=membership.joined_at,
            ),
            AlreadyExistsError("this user is a member of the org already", field="email"),
        )

    async def remove_membership(self, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        removed = await self._s.execute(
            delete(memberships)
            .where(memberships.c.org_id == org_id, memberships.c.user_id == user_id)
            .returning(memberships.c.user_id)
        )
        return removed.first() is not None

    async def count_members_of_type(self, org_id: uuid.UUID, user_type: str) -> int:
        count: int = (
            await self._s.execute(
                select(func.count()).where(
                    memberships.c.org_id == org_id, memberships.c.user_type == user_type
                )
            )
        ).scalar_one()
        return count

    async def members_page(
        self, org_id: uuid.UUID, after: MemberCursor | None, limit: int
    ) -> list[tuple[Membership, User]]:
        query = (
            select(
                memberships,
                users.c.id,
                users.c.email,
                users.c.display_name,
                users.c.created_at,
                users.c.email_verified_at,
            )
            .join(users, users.c.id == memberships.c.user_id)
            .where(memberships.c.org_id == org_id)
            .order_by(memberships.c.joined_at, memberships.c.user_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(
                tuple_(memberships.c.joined_at, memberships.c.user_id)
                > tuple_(after.joined_at, after.user_id)
            )
        rows = (await self._s.execute(query)).all()
        return [
            (
                _membership(row),
                User(
                    id=row.id,
                    email=row.email,
                    display_name=row.display_name,
                    password_hash="",
                    created_at=row.created_at,
                    email_verified_at=row.email_verified_at,
                ),
            )
            for row in rows
        ]

    async def revoke_org_sessions_of(
        self, user_id: uuid.UUID, org_id: uuid.UUID, at: dt.datetime
    ) -> int:
        result = await self._s.execute(
            update(sessions)
            .where(
                sessions.c.user_id == user_id,
                sessions.c.org_id == org_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > at,
            )
            .values(revoked_at=at)
            .returning(sessions.c.id)
        )
        return len(result.all())

    async def set_org_auth_policy(self, org_id: uuid.UUID, policy: OrgAuthPolicy) -> Org | None:
        row = (
            await self._s.execute(
                update(orgs)
                .where(orgs.c.id == org_id)
                .values(
                    require_mfa=policy.require_mfa, magic_link_enabled=policy.magic_link_enabled
                )
                .returning(*orgs.c)
            )
        ).first()
        return _org(row) if row else None
