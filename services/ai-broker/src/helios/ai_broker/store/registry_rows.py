"""PostgreSQL rows of the action registry (I5)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from helios.ai_broker.domain.model import Action
from helios.ai_broker.store.tables import actions

__all__ = ["RegistryRows"]


def _action(row: object) -> Action:
    return Action(
        name=row.name,  # type: ignore[attr-defined]
        service=row.service,  # type: ignore[attr-defined]
        description=row.description,  # type: ignore[attr-defined]
        permission=row.permission,  # type: ignore[attr-defined]
        input_schema=dict(row.input_schema),  # type: ignore[attr-defined]
        target_method=row.target_method,  # type: ignore[attr-defined]
        ai_allowed=row.ai_allowed,  # type: ignore[attr-defined]
        summary_template=row.summary_template,  # type: ignore[attr-defined]
        updated_at=row.updated_at,  # type: ignore[attr-defined]
    )


class RegistryRows:
    """Implements the area's transaction port over the transaction's session `_s`."""

    _s: AsyncSession
    _clock: Callable[[], dt.datetime]

    async def action_by_name(self, name: str) -> Action | None:
        row = (await self._s.execute(select(actions).where(actions.c.name == name))).first()
        return _action(row) if row else None

    async def actions_of_service(self, service: str) -> list[Action]:
        await self._s.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"ai_broker.actions:{service}"},
        )
        rows = await self._s.execute(
            select(actions).where(actions.c.service == service).order_by(actions.c.name)
        )
        return [_action(row) for row in rows]

    async def save_action(self, action: Action) -> None:
        values = {
            "service": action.service,
            "description": action.description,
            "permission": action.permission,
            "input_schema": action.input_schema,
            "target_method": action.target_method,
            "ai_allowed": action.ai_allowed,
            "summary_template": action.summary_template,
            "updated_at": action.updated_at,
        }
        await self._s.execute(
            insert(actions)
            .values(name=action.name, **values)
            .on_conflict_do_update(index_elements=[actions.c.name], set_=values)
        )

    async def remove_actions(self, names: Collection[str]) -> None:
        if names:
            await self._s.execute(delete(actions).where(actions.c.name.in_(list(names))))

    async def actions_page(self, after: str, limit: int, ai_allowed_only: bool) -> list[Action]:
        query = select(actions).where(actions.c.name > after)
        if ai_allowed_only:
            query = query.where(actions.c.ai_allowed.is_(True))
        rows = await self._s.execute(query.order_by(actions.c.name).limit(limit))
        return [_action(row) for row in rows]
