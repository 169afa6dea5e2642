"""Test helpers: the test's sessions taken in turns by tasks sharing its rolled-back connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["OneSessionAtATime", "TurnTakingSession"]


class TurnTakingSession(AsyncSession):
    """A session that holds `turns` while open (use as `class_=` of an async_sessionmaker): the
    test's sessions share one connection, and a server task polls it while the test writes."""

    def __init__(self, *args: Any, turns: asyncio.Lock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns = turns

    async def __aenter__(self) -> Self:
        await self._turns.acquire()
        return self

    async def __aexit__(
        self,
        type_: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(type_, value, traceback)
        finally:
            self._turns.release()


class OneSessionAtATime:
    """The test's sessions, one at a time: relays, consumers and the test share the test's single
    connection, whose savepoints must not interleave. Every session is a real one on the real
    database (nothing is faked); only their turns are serialized."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        async with self._lock, self._sessions() as session:
            yield session
