"""Teams and memberships: membership is what `:team` grants reach (Z5)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from helios.authz.domain.model import TeamMemberRecord, TeamRecord
from helios.authz.ports import AuthzTransaction, UnitOfWork
from helios.authz.service.access import Access
from helios.authz.service.writes import description, name, page_size, record_write, uuid_of
from helios.authz.service.writes import user_id as valid_user
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import NotFoundError
from helios.proto.authz.v1 import events_pb2

__all__ = ["TeamService"]

_TEAM = events_pb2.POLICY_CHANGE_KIND_TEAM


class TeamService:
    """Team CRUD and membership; every change bumps the org's revision and is audited."""

    def __init__(self, uow: UnitOfWork, access: Access, clock: Callable[[], dt.datetime]) -> None:
        self._uow = uow
        self._access = access
        self._clock = clock

    @staticmethod
    async def _team(tx: AuthzTransaction, org_id: str, team_id: str) -> TeamRecord:
        team = await tx.teams.get(uuid_of(team_id, "team_id"))
        if team is None or team.org_id != org_id:
            raise NotFoundError("no such team in this org")
        return team

    async def create(self, ctx: CallContext, org_id: str, team_name: str, text: str) -> TeamRecord:
        """A new team of the org."""
        actor = await self._access.authorize(ctx, org_id, "authz.team.create", "authz.team")
        team_name, text = name(team_name), description(text)
        async with self._uow() as tx:
            revision = await tx.revisions.bump(actor.org_id)
            now = self._clock()
            team = TeamRecord(uuid.uuid4(), actor.org_id, team_name, text, now, now, revision)
            await tx.teams.add(team)
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _TEAM,
                Change(
                    "authz.team.create",
                    "authz.team",
                    str(team.id),
                    diff={"name": team_name},
                ),
            )
        return team

    async def get(self, ctx: CallContext, org_id: str, team_id: str) -> tuple[TeamRecord, int]:
        """One team and the revision read at."""
        actor = await self._access.authorize(ctx, org_id, "authz.team.read", "authz.team", team_id)
        async with self._uow() as tx:
            revision = await tx.revisions.current(actor.org_id)
            return await self._team(tx, actor.org_id, team_id), revision

    async def page(
        self, ctx: CallContext, org_id: str, member_user_id: str, size: int, page_token: str
    ) -> tuple[list[TeamRecord], str, int]:
        """A page of the org's teams ordered by name (optionally one user's teams)."""
        actor = await self._access.authorize(ctx, org_id, "authz.team.list", "authz.team")
        limit = page_size(size)
        async with self._uow() as tx:
            revision = await tx.revisions.current(actor.org_id)
            found = await tx.teams.page(
                actor.org_id, member_user_id=member_user_id, after=page_token, limit=limit + 1
            )
        page = found[:limit]
        return page, page[-1].name if len(found) > limit else "", revision

    async def update(
        self,
        ctx: CallContext,
        org_id: str,
        team_id: str,
        new_name: str | None,
        new_description: str | None,
    ) -> TeamRecord:
        """Rename or redescribe a team."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.team.update", "authz.team", team_id
        )
        async with self._uow() as tx:
            team = await self._team(tx, actor.org_id, team_id)
            revision = await tx.revisions.bump(actor.org_id)
            updated = await tx.teams.update(
                team,
                name=team.name if new_name is None else name(new_name),
                description=team.description
                if new_description is None
                else description(new_description),
                revision=revision,
                now=self._clock(),
            )
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _TEAM,
                Change(
                    "authz.team.update",
                    "authz.team",
                    str(team.id),
                    diff={"name": [team.name, updated.name]},
                ),
            )
        return updated

    async def delete(self, ctx: CallContext, org_id: str, team_id: str) -> int:
        """Delete a team and end its memberships (history kept)."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.team.delete", "authz.team", team_id
        )
        async with self._uow() as tx:
            team = await self._team(tx, actor.org_id, team_id)
            revision = await tx.revisions.bump(actor.org_id)
            former = await tx.teams.delete(team, revision)
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _TEAM,
                Change(
                    "authz.team.delete",
                    "authz.team",
                    str(team.id),
                    diff={"name": team.name, "members_removed": former},
                ),
                former,
            )
        return revision

    async def add_member(
        self, ctx: CallContext, org_id: str, team_id: str, user_id: str
    ) -> tuple[TeamMemberRecord, int]:
        """Add a user to a team; idempotent (the existing membership is returned)."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.teamMember.create", "authz.teamMember"
        )
        user_id = valid_user(user_id)
        async with self._uow() as tx:
            team = await self._team(tx, actor.org_id, team_id)
            existing = await tx.teams.member(team.id, user_id)
            if existing is not None:
                return existing, await tx.revisions.current(actor.org_id)
            revision = await tx.revisions.bump(actor.org_id)
            member = TeamMemberRecord(team.id, user_id, actor.name, self._clock())
            await tx.teams.add_member(member, actor.org_id, revision)
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _TEAM,
                Change(
                    "authz.team.addMember",
                    "authz.teamMember",
                    f"{team.id}/{user_id}",
                    diff={"team": team.name, "user_id": user_id},
                ),
                [user_id],
            )
        return member, revision

    async def remove_member(self, ctx: CallContext, org_id: str, team_id: str, user_id: str) -> int:
        """Remove a user from a team; idempotent."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.teamMember.delete", "authz.teamMember"
        )
        user_id = valid_user(user_id)
        async with self._uow() as tx:
            team = await self._team(tx, actor.org_id, team_id)
            if await tx.teams.member(team.id, user_id) is None:
                return await tx.revisions.current(actor.org_id)
            revision = await tx.revisions.bump(actor.org_id)
            await tx.teams.remove_member(team.id, user_id, revision)
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                _TEAM,
                Change(
                    "authz.team.removeMember",
                    "authz.teamMember",
                    f"{team.id}/{user_id}",
                    diff={"team": team.name, "user_id": user_id},
                ),
                [user_id],
            )
        return revision

    async def members(
        self, ctx: CallContext, org_id: str, team_id: str, size: int, page_token: str
    ) -> tuple[list[TeamMemberRecord], str, int]:
        """A page of a team's members ordered by user id."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.teamMember.list", "authz.teamMember"
        )
        limit = page_size(size)
        async with self._uow() as tx:
            team = await self._team(tx, actor.org_id, team_id)
            revision = await tx.revisions.current(actor.org_id)
            found = await tx.teams.members(team.id, page_token, limit + 1)
        page = found[:limit]
        return page, page[-1].user_id if len(found) > limit else "", revision
