"""Periodic cleanup of sign-in throttle rows that no longer count: failures older than the
window and lockouts already over (domain/throttle.py). Counting never reads them, so deleting
them changes no decision; any replica may sweep, and concurrent sweeps are harmless."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.store.tables import sign_in_failures, sign_in_lockouts
from helios.kernel.server import BackgroundTask

__all__ = ["ThrottleCleanup", "throttle_cleanup_task"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ThrottleCleanup:
    """Deletes expired throttle rows in one transaction."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], dt.datetime]
    window: dt.timedelta

    async def sweep(self) -> tuple[int, int]:
        """Delete failures at or before now - window and lockouts ended by now; returns how many
        (failures, lockouts) were deleted."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            failures = await session.execute(
                delete(sign_in_failures).where(sign_in_failures.c.failed_at <= now - self.window)
            )
            lockouts = await session.execute(
                delete(sign_in_lockouts).where(sign_in_lockouts.c.locked_until <= now)
            )
        return failures.rowcount, lockouts.rowcount  # type: ignore[attr-defined]


def throttle_cleanup_task(cleanup: ThrottleCleanup, interval: float) -> BackgroundTask:
    """Sweep once at start and then every `interval` seconds until the server stops; a failed
    sweep (PostgreSQL away) is logged and tried again at the next tick."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                failures, lockouts = await cleanup.sweep()
                if failures or lockouts:
                    log.info(
                        "expired sign-in throttle rows deleted",
                        extra={"failures": failures, "lockouts": lockouts},
                    )
            except Exception as exc:
                log.warning("sign-in throttle cleanup failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stop.wait()

    return run
