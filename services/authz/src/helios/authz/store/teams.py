"""Teams and their membership history in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from helios.authz.domain.model import TeamMemberRecord, TeamRecord
from helios.authz.store.history import live
from helios.authz.store.tables import team_members, teams
from helios.kernel.db import insert_unique
from helios.kernel.errors import AlreadyExistsError

__all__ = ["PgTeams"]


def _name_taken() -> AlreadyExistsError:
    return AlreadyExistsError("a team with this name exists in the org", field="name")


def _team(row: Row[Any]) -> TeamRecord:
    return TeamRecord(
        id=row.id,
        org_id=row.org_id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        revision=row.revision,
        member_count=int(row.member_count),
    )


def _member(row: Row[Any]) -> TeamMemberRecord:
    return TeamMemberRecord(
        team_id=row.team_id, user_id=row.user_id, added_by=row.added_by, created_at=row.created_at
    )


_COUNT = (
    select(func.count())
    .where(team_members.c.team_id == teams.c.id, live(team_members))
    .scalar_subquery()
    .label("member_count")
)


class PgTeams:
    """TeamStore over `authz.teams` and `authz.team_members`."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, team: TeamRecord) -> None:
        await insert_unique(
            self._s,
            teams.insert().values(
                id=team.id,
                org_id=team.org_id,
                name=team.name,
                description=team.description,
                created_at=team.created_at,
                updated_at=team.updated_at,
                revision=team.revision,
            ),
            _name_taken(),
        )

    async def get(self, team_id: uuid.UUID) -> TeamRecord | None:
        row = (
            await self._s.execute(
                select(teams, _COUNT).where(
                    teams.c.id == team_id, teams.c.deleted_revision.is_(None)
                )
            )
        ).first()
        return None if row is None else _team(row)

    async def page(
        self, org_id: str, *, member_user_id: str, after: str, limit: int
    ) -> list[TeamRecord]:
        statement = select(teams, _COUNT).where(
            teams.c.org_id == org_id, teams.c.deleted_revision.is_(None), teams.c.name > after
        )
        if member_user_id:
            statement = statement.where(
                teams.c.id.in_(
                    select(team_members.c.team_id).where(
                        team_members.c.user_id == member_user_id, live(team_members)
                    )
                )
            )
        rows = await self._s.execute(statement.order_by(teams.c.name).limit(limit))
        return [_team(row) for row in rows]

    async def update(
        self, team: TeamRecord, *, name: str, description: str, revision: int, now: dt.datetime
    ) -> TeamRecord:
        await insert_unique(
            self._s,
            update(teams)
            .where(teams.c.id == team.id)
            .values(name=name, description=description, updated_at=now, revision=revision),
            _name_taken(),
        )
        return TeamRecord(
            id=team.id,
            org_id=team.org_id,
            name=name,
            description=description,
            created_at=team.created_at,
            updated_at=now,
            revision=revision,
            member_count=team.member_count,
        )

    async def delete(self, team: TeamRecord, revision: int) -> list[str]:
        await self._s.execute(
            update(teams).where(teams.c.id == team.id).values(deleted_revision=revision)
        )
        rows = await self._s.execute(
            update(team_members)
            .where(team_members.c.team_id == team.id, live(team_members))
            .values(removed_revision=revision)
            .returning(team_members.c.user_id)
        )
        return sorted(rows.scalars())

    async def member(self, team_id: uuid.UUID, user_id: str) -> TeamMemberRecord | None:
        row = (
            await self._s.execute(
                select(team_members).where(
                    team_members.c.team_id == team_id,
                    team_members.c.user_id == user_id,
                    live(team_members),
                )
            )
        ).first()
        return None if row is None else _member(row)

    async def add_member(self, member: TeamMemberRecord, org_id: str, revision: int) -> None:
        await self._s.execute(
            team_members.insert().values(
                team_id=member.team_id,
                org_id=org_id,
                user_id=member.user_id,
                added_by=member.added_by,
                created_at=member.created_at,
                added_revision=revision,
            )
        )

    async def remove_member(self, team_id: uuid.UUID, user_id: str, revision: int) -> bool:
        result = await self._s.execute(
            update(team_members)
            .where(
                team_members.c.team_id == team_id,
                team_members.c.user_id == user_id,
                live(team_members),
            )
            .values(removed_revision=revision)
            .returning(team_members.c.id)
        )
        return result.first() is not None

    async def members(self, team_id: uuid.UUID, after: str, limit: int) -> list[TeamMemberRecord]:
        rows = await self._s.execute(
            select(team_members)
            .where(
                team_members.c.team_id == team_id,
                live(team_members),
                team_members.c.user_id > after,
            )
            .order_by(team_members.c.user_id)
            .limit(limit)
        )
        return [_member(row) for row in rows]
