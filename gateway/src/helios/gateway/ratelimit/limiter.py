"""Fixed-window counters: in PostgreSQL (shared by replicas) or in memory (one process only)."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, literal_column
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from helios.gateway.store.tables import rate_windows

__all__ = ["Decision", "Limit", "MemoryRateLimiter", "PostgresRateLimiter", "RateLimiter"]

log = logging.getLogger(__name__)
_PURGE_EVERY = 1000


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `per_window` hits of `key` in each window of `window_seconds`."""

    key: str
    per_window: int
    window_seconds: int = 60


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether the request may pass; when not, after how many seconds to retry."""

    allowed: bool
    retry_after: int = 0


def _window(now: dt.datetime, seconds: int) -> tuple[dt.datetime, int]:
    epoch = int(now.timestamp())
    start = epoch - epoch % seconds
    return dt.datetime.fromtimestamp(start, dt.UTC), start + seconds - epoch


class RateLimiter(Protocol):
    """Counts one hit against every limit; refuses when any is exceeded."""

    async def hit(self, limits: Sequence[Limit], now: dt.datetime) -> Decision:
        """Count and decide; never raises (a broken store lets the request pass, logged)."""
        ...


class PostgresRateLimiter:
    """One upsert per request for all its limits; replicas share the counters."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._hits = 0

    async def hit(self, limits: Sequence[Limit], now: dt.datetime) -> Decision:
        rows, retry = [], {}
        for limit in limits:
            start, remaining = _window(now, limit.window_seconds)
            rows.append({"key": limit.key, "window_start": start, "hits": 1})
            retry[limit.key] = remaining
        upsert = insert(rate_windows).values(rows)
        statement = upsert.on_conflict_do_update(
            index_elements=["key", "window_start"],
            set_={"hits": rate_windows.c.hits + literal_column("1")},
        ).returning(rate_windows.c.key, rate_windows.c.hits)
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(statement)
                counts: dict[str, int] = {str(k): int(v) for k, v in result.tuples().all()}
                self._hits += 1
                if self._hits % _PURGE_EVERY == 0:
                    await conn.execute(
                        delete(rate_windows).where(
                            rate_windows.c.window_start < now - dt.timedelta(hours=1)
                        )
                    )
        except Exception as exc:  # the limiter must not take the gateway down with it
            log.warning(
                "rate limiter unavailable; letting the request pass", extra={"error": repr(exc)}
            )
            return Decision(allowed=True)
        over = [limit for limit in limits if counts.get(limit.key, 0) > limit.per_window]
        if over:
            return Decision(allowed=False, retry_after=max(retry[limit.key] for limit in over))
        return Decision(allowed=True)


class MemoryRateLimiter:
    """For a single gateway process (no database configured): counters in this process only."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, dt.datetime]] = Counter()

    async def hit(self, limits: Sequence[Limit], now: dt.datetime) -> Decision:
        over: list[int] = []
        for limit in limits:
            start, remaining = _window(now, limit.window_seconds)
            self._counts[(limit.key, start)] += 1
            if self._counts[(limit.key, start)] > limit.per_window:
                over.append(remaining)
        if len(self._counts) > 100_000:
            oldest = now - dt.timedelta(hours=1)
            for key in [k for k in self._counts if k[1] < oldest]:
                del self._counts[key]
        return Decision(allowed=not over, retry_after=max(over, default=0))
