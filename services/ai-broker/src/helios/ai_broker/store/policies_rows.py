"""PostgreSQL rows of the orgs' AI policies."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from helios.ai_broker.domain.policy import DEFAULT_POLICY, AiPolicy
from helios.ai_broker.store.tables import ai_policies

__all__ = ["PolicyRows"]


class PolicyRows:
    """Implements the area's transaction port over the transaction's session `_s`; updates are
    optimistic on `version`."""

    _s: AsyncSession

    async def ai_policy_of(self, org_id: str) -> AiPolicy:
        row = (
            await self._s.execute(
                select(ai_policies).where(ai_policies.c.org_id == uuid.UUID(org_id))
            )
        ).first()
        if row is None:
            return DEFAULT_POLICY
        return AiPolicy(
            require_step_up_to_confirm=row.require_step_up_to_confirm,
            version=row.version,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
        )

    async def save_ai_policy(self, org_id: str, policy: AiPolicy, expected_version: int) -> bool:
        values = {
            "require_step_up_to_confirm": policy.require_step_up_to_confirm,
            "version": expected_version + 1,
            "updated_at": policy.updated_at,
            "updated_by": policy.updated_by,
        }
        org = uuid.UUID(org_id)
        if expected_version == 0:
            inserted = await self._s.execute(
                insert(ai_policies)
                .values(org_id=org, **values)
                .on_conflict_do_nothing(index_elements=[ai_policies.c.org_id])
                .returning(ai_policies.c.org_id)
            )
            return inserted.first() is not None
        updated = await self._s.execute(
            update(ai_policies)
            .where(ai_policies.c.org_id == org, ai_policies.c.version == expected_version)
            .values(**values)
            .returning(ai_policies.c.org_id)
        )
        return updated.first() is not None
