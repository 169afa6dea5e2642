"""PostgreSQL implementation of the broker's UnitOfWork and BrokerTransaction ports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.ai_broker.ports import BrokerTransaction
from helios.ai_broker.store.invocations_rows import InvocationRows
from helios.ai_broker.store.policies_rows import PolicyRows
from helios.ai_broker.store.registry_rows import RegistryRows
from helios.ai_broker.store.sessions_rows import SessionRows
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.unit_of_work import SqlUnitOfWork

__all__ = ["postgres_unit_of_work"]


class _Transaction(SessionRows, RegistryRows, InvocationRows, PolicyRows):
    def __init__(
        self, session: AsyncSession, recorder: AuditRecorder, clock: Callable[[], dt.datetime]
    ) -> None:
        self._s = session
        self._recorder = recorder
        self._clock = clock

    async def record(self, change: Change, ctx: CallContext) -> None:
        await self._recorder.record(self._s, change, ctx, self._clock())


def postgres_unit_of_work(
    sessions: async_sessionmaker[AsyncSession],
    recorder: AuditRecorder,
    clock: Callable[[], dt.datetime],
    on_commit: Callable[[], None] = lambda: None,
) -> SqlUnitOfWork[BrokerTransaction]:
    """The UnitOfWork port over PostgreSQL; commits wake the outbox relay via `on_commit`."""
    return SqlUnitOfWork(sessions, lambda s: _Transaction(s, recorder, clock), on_commit)
