"""The periodic cleanup of sign-in throttle rows (A1): failures older than the window and ended
lockouts go, everything that still counts stays."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.store import tables
from helios.identity.store.throttle_cleanup import ThrottleCleanup, throttle_cleanup_task

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(minutes=15)


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            tables.sign_in_failures.insert(),
            [
                {"key": "old", "scope": "account", "failed_at": NOW - WINDOW},
                {"key": "older", "scope": "ip", "failed_at": NOW - dt.timedelta(days=3)},
                {"key": "recent", "scope": "account", "failed_at": NOW - dt.timedelta(minutes=1)},
            ],
        )
        await session.execute(
            tables.sign_in_lockouts.insert(),
            [
                {"key": "ended", "scope": "account", "locked_until": NOW},
                {"key": "running", "scope": "ip", "locked_until": NOW + dt.timedelta(minutes=5)},
            ],
        )


async def _left(sessions: async_sessionmaker[AsyncSession]) -> tuple[list[str], list[str]]:
    async with sessions() as session:
        failures = await session.execute(select(tables.sign_in_failures.c.key))
        lockouts = await session.execute(select(tables.sign_in_lockouts.c.key))
        return sorted(failures.scalars()), sorted(lockouts.scalars())


async def test_a1_sweep_deletes_only_rows_that_no_longer_count(
    identity_schema: str, db_session: async_sessionmaker[AsyncSession]
) -> None:
    """A1: failures at or before now - window and lockouts ended by now are deleted; a recent
    failure and a running lockout stay; a second sweep deletes nothing."""
    await _seed(db_session)
    cleanup = ThrottleCleanup(db_session, lambda: NOW, WINDOW)

    assert await cleanup.sweep() == (2, 1)

    assert await _left(db_session) == (["recent"], ["running"])
    assert await cleanup.sweep() == (0, 0)


async def test_a1_background_task_sweeps_at_start_and_stops_on_request(
    identity_schema: str, db_session: async_sessionmaker[AsyncSession]
) -> None:
    """A1: the background task sweeps as soon as it starts and returns once stop is set (the
    clock sets it here, so exactly one sweep runs)."""
    await _seed(db_session)
    stop = asyncio.Event()

    def clock() -> dt.datetime:
        stop.set()
        return NOW

    run = throttle_cleanup_task(ThrottleCleanup(db_session, clock, WINDOW), interval=3600)
    await asyncio.wait_for(run(stop), timeout=10)

    assert await _left(db_session) == (["recent"], ["running"])
