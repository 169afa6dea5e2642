"""One database transaction per block, handed to a service's transaction adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.kernel.outbox import OUTBOX_WRITTEN

__all__ = ["SqlUnitOfWork"]

T = TypeVar("T")


class SqlUnitOfWork(Generic[T]):
    """`async with uow() as tx`: `tx` is `make(session)` inside a transaction that commits when
    the block ends normally and rolls back on an exception; after a commit that enqueued outbox
    events `on_commit` runs (services wake their outbox relay there; reads wake nothing)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        make: Callable[[AsyncSession], T],
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._make = make
        self._on_commit = on_commit

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[T]:
        async with self._sessions() as session:
            async with session.begin():
                yield self._make(session)
            if session.info.pop(OUTBOX_WRITTEN, False):
                self._on_commit()
