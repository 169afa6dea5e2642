"""PostgreSQL rows of invocations and parked confirmations (I3, I4)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from helios.ai_broker.domain.hashing import canonical_json
from helios.ai_broker.domain.model import Invocation, InvocationState
from helios.ai_broker.store.tables import invocations

__all__ = ["InvocationRows"]


def _invocation(row: Any) -> Invocation:
    return Invocation(
        id=row.id,
        org_id=str(row.org_id),
        ai_session_id=row.ai_session_id,
        user_id=str(row.user_id),
        action=row.action,
        state=InvocationState(row.state),
        input=json.loads(row.input_json),
        input_hash=row.input_hash,
        dangerous=row.dangerous,
        decision_id=row.decision_id,
        created_at=row.created_at,
        output=json.loads(row.output_json) if row.output_json is not None else None,
        output_hash=row.output_hash,
        confirmation_hash=bytes(row.confirmation_hash or b""),
        confirmation_expires_at=row.confirmation_expires_at,
        summary=row.summary,
        system_prompt_hash=row.system_prompt_hash,
        step_up_required=row.step_up_required,
        decided_by=row.decided_by,
        error_code=row.error_code,
        error_message=row.error_message,
        completed_at=row.completed_at,
    )


def _changing(invocation: Invocation) -> dict[str, Any]:
    return {
        "state": invocation.state.value,
        "output_json": canonical_json(invocation.output) if invocation.output is not None else None,
        "output_hash": invocation.output_hash,
        "decided_by": invocation.decided_by,
        "error_code": invocation.error_code,
        "error_message": invocation.error_message,
        "completed_at": invocation.completed_at,
    }


class InvocationRows:
    """Implements the area's transaction port over the transaction's session `_s`; the input
    and output are kept as their canonical JSON, the exact text their hashes cover."""

    _s: AsyncSession
    _clock: Callable[[], dt.datetime]

    async def add_invocation(self, invocation: Invocation) -> None:
        await self._s.execute(
            invocations.insert().values(
                id=invocation.id,
                org_id=uuid.UUID(invocation.org_id),
                ai_session_id=invocation.ai_session_id,
                user_id=uuid.UUID(invocation.user_id),
                action=invocation.action,
                input_json=canonical_json(invocation.input),
                input_hash=invocation.input_hash,
                dangerous=invocation.dangerous,
                decision_id=invocation.decision_id,
                confirmation_hash=invocation.confirmation_hash or None,
                confirmation_expires_at=invocation.confirmation_expires_at,
                summary=invocation.summary,
                system_prompt_hash=invocation.system_prompt_hash,
                step_up_required=invocation.step_up_required,
                created_at=invocation.created_at,
                **_changing(invocation),
            )
        )

    async def invocation_by_id(
        self, invocation_id: uuid.UUID, *, for_update: bool = False
    ) -> Invocation | None:
        query = select(invocations).where(invocations.c.id == invocation_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._s.execute(query)).first()
        return _invocation(row) if row else None

    async def save_invocation(self, invocation: Invocation) -> None:
        await self._s.execute(
            update(invocations)
            .where(invocations.c.id == invocation.id)
            .values(**_changing(invocation))
        )
