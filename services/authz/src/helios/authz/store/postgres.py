"""PostgreSQL implementation of the UnitOfWork: one session, every store, audit, announcements."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.authz.domain.announcements import CATALOG_SUBJECT, POLICY_SUBJECT_PREFIX
from helios.authz.ports import AuthzTransaction
from helios.authz.store.catalog import PgCatalog
from helios.authz.store.policy import PgDangerous, PgRevisions, PgSubjects
from helios.authz.store.roles import PgAssignments, PgRoles
from helios.authz.store.tables import outbox
from helios.authz.store.teams import PgTeams
from helios.authz.store.user_types import PgUserTypes
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.outbox import enqueue
from helios.kernel.unit_of_work import SqlUnitOfWork
from helios.proto.authz.v1 import events_pb2

__all__ = ["postgres_unit_of_work"]


class _Transaction:
    def __init__(
        self, session: AsyncSession, recorder: AuditRecorder, clock: Callable[[], dt.datetime]
    ) -> None:
        self._s = session
        self._recorder = recorder
        self._clock = clock
        self.catalog = PgCatalog(session)
        self.revisions = PgRevisions(session)
        self.roles = PgRoles(session)
        self.assignments = PgAssignments(session)
        self.teams = PgTeams(session)
        self.user_types = PgUserTypes(session)
        self.dangerous = PgDangerous(session)
        self.subjects = PgSubjects(session)

    async def record(self, change: Change, ctx: CallContext) -> None:
        await self._recorder.record(self._s, change, ctx, self._clock())

    async def announce(self, changed: events_pb2.PolicyChanged) -> None:
        event_id = uuid.UUID(changed.metadata.event_id) if changed.metadata.event_id else None
        event_id = event_id or uuid.uuid4()
        changed.metadata.event_id = str(event_id)
        if not changed.metadata.HasField("occur_time"):
            changed.metadata.occur_time.FromDatetime(self._clock())
        subject = (
            CATALOG_SUBJECT
            if changed.kind == events_pb2.POLICY_CHANGE_KIND_CATALOG
            else POLICY_SUBJECT_PREFIX + changed.metadata.org_id
        )
        await enqueue(self._s, outbox, subject, changed, event_id=event_id)


def postgres_unit_of_work(
    sessions: async_sessionmaker[AsyncSession],
    recorder: AuditRecorder,
    clock: Callable[[], dt.datetime],
    on_commit: Callable[[], None] = lambda: None,
) -> SqlUnitOfWork[AuthzTransaction]:
    """The UnitOfWork port over PostgreSQL; commits wake the outbox relay via `on_commit`."""
    return SqlUnitOfWork(sessions, lambda s: _Transaction(s, recorder, clock), on_commit)
