"""Org revisions, the org's dangerous actions and the facts a decision reads, in PostgreSQL."""

from __future__ import annotations

from sqlalchemy import literal, null, select, union_all, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from helios.authz.domain.blueprints import Blueprint
from helios.authz.domain.model import GrantSource, HeldGrant, SubjectFacts
from helios.authz.store.history import live
from helios.authz.store.tables import (
    assignments,
    dangerous_actions,
    org_revisions,
    role_grants,
    role_names,
    roles,
    team_members,
    user_type_defaults,
    user_type_members,
)
from helios.authz_rules.permissions import Grant, Scope, parse_key

__all__ = ["PgDangerous", "PgRevisions", "PgSubjects"]


class PgRevisions:
    """RevisionStore over `authz.org_revisions`."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def current(self, org_id: str) -> int:
        found = await self._s.scalar(
            select(org_revisions.c.revision).where(org_revisions.c.org_id == org_id)
        )
        return int(found or 0)

    async def bump(self, org_id: str) -> int:
        statement = (
            insert(org_revisions)
            .values(org_id=org_id, revision=1)
            .on_conflict_do_update(
                index_elements=[org_revisions.c.org_id],
                set_={"revision": org_revisions.c.revision + 1},
            )
            .returning(org_revisions.c.revision)
        )
        return int((await self._s.execute(statement)).scalar_one())


class PgDangerous:
    """DangerousStore over `authz.dangerous_actions`."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def patterns(self, org_id: str) -> frozenset[str]:
        return await _patterns(self._s, org_id, None)

    async def replace(self, org_id: str, patterns: frozenset[str], revision: int) -> None:
        current = await self.patterns(org_id)
        gone = current - patterns
        if gone:
            await self._s.execute(
                update(dangerous_actions)
                .where(
                    dangerous_actions.c.org_id == org_id,
                    dangerous_actions.c.pattern.in_(sorted(gone)),
                    live(dangerous_actions),
                )
                .values(removed_revision=revision)
            )
        new = patterns - current
        if new:
            await self._s.execute(
                dangerous_actions.insert(),
                [{"org_id": org_id, "pattern": p, "added_revision": revision} for p in sorted(new)],
            )


async def _patterns(session: AsyncSession, org_id: str, at: int | None) -> frozenset[str]:
    rows = await session.scalars(
        select(dangerous_actions.c.pattern).where(
            dangerous_actions.c.org_id == org_id, live(dangerous_actions, at)
        )
    )
    return frozenset(rows)


class PgSubjects:
    """SubjectReader: one query for grants (assignments and user-type default), one for teams,
    one for dangerous patterns, all as of the same revision."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def _held(self, org_id: str, user_id: str, at: int | None) -> list[HeldGrant]:
        assigned = (
            select(
                role_grants.c.permission_key,
                role_grants.c.scope,
                roles.c.id.label("role_id"),
                role_names.c.name,
                literal(GrantSource.ROLE_ASSIGNMENT.value).label("source"),
                assignments.c.id.label("assignment_id"),
                null().label("user_type_id"),
            )
            .select_from(
                assignments.join(roles, roles.c.id == assignments.c.role_id)
                .join(role_grants, role_grants.c.role_id == roles.c.id)
                .join(role_names, role_names.c.role_id == roles.c.id)
            )
            .where(
                assignments.c.org_id == org_id,
                assignments.c.user_id == user_id,
                roles.c.org_id == org_id,
                live(assignments, at),
                live(role_grants, at),
                live(role_names, at),
            )
        )
        by_type = (
            select(
                role_grants.c.permission_key,
                role_grants.c.scope,
                roles.c.id.label("role_id"),
                role_names.c.name,
                literal(GrantSource.USER_TYPE_DEFAULT.value).label("source"),
                null().label("assignment_id"),
                user_type_members.c.user_type_id,
            )
            .select_from(
                user_type_members.join(
                    user_type_defaults,
                    user_type_defaults.c.user_type_id == user_type_members.c.user_type_id,
                )
                .join(roles, roles.c.id == user_type_defaults.c.role_id)
                .join(role_grants, role_grants.c.role_id == roles.c.id)
                .join(role_names, role_names.c.role_id == roles.c.id)
            )
            .where(
                user_type_members.c.org_id == org_id,
                user_type_members.c.user_id == user_id,
                roles.c.org_id == org_id,
                live(user_type_members, at),
                live(user_type_defaults, at),
                live(role_grants, at),
                live(role_names, at),
            )
        )
        both = union_all(assigned, by_type).subquery()
        rows = await self._s.execute(
            select(both).order_by(both.c.name, both.c.permission_key, both.c.scope, both.c.source)
        )
        return [
            HeldGrant(
                grant=Grant(parse_key(row.permission_key), Scope(row.scope)),
                role_id=row.role_id,
                role_name=row.name,
                source=GrantSource(row.source),
                assignment_id=row.assignment_id,
                user_type_id=row.user_type_id,
            )
            for row in rows
        ]

    async def facts(self, org_id: str, user_id: str, at: int | None = None) -> SubjectFacts:
        # The revision is read first: facts read after it are at least that new, so a cache
        # entry is never labelled newer than what it holds.
        if at is None:
            revision = await PgRevisions(self._s).current(org_id)
        else:
            revision = at
        held = await self._held(org_id, user_id, at)
        teams = await self._s.scalars(
            select(team_members.c.team_id).where(
                team_members.c.org_id == org_id,
                team_members.c.user_id == user_id,
                live(team_members, at),
            )
        )
        root = await self._s.scalar(
            select(assignments.c.id)
            .join(roles, roles.c.id == assignments.c.role_id)
            .where(
                assignments.c.org_id == org_id,
                assignments.c.user_id == user_id,
                roles.c.blueprint == Blueprint.PLATFORM_ROOT.value,
                live(assignments, at),
            )
            .limit(1)
        )
        return SubjectFacts(
            org_id=org_id,
            user_id=user_id,
            revision=revision,
            held=tuple(held),
            team_ids=frozenset(str(t) for t in teams),
            dangerous_patterns=await _patterns(self._s, org_id, at),
            platform_root=root is not None,
        )
