"""When the local copy of the permission catalog must be fetched again."""

from __future__ import annotations

from helios.authz_client.snapshot import CatalogSnapshot
from helios.authz_rules.permissions import PermissionKey

__all__ = ["CatalogState"]


class CatalogState:
    """The catalog held locally and what is known about newer ones. The catalog only grows
    (a registered spec never changes), so being behind shows up as an unknown key or as a
    snapshot or announcement naming a newer catalog revision."""

    def __init__(self, refresh_interval: float = 1.0) -> None:
        if refresh_interval < 0:
            raise ValueError("refresh_interval must not be negative")
        self._interval = refresh_interval
        self.current: CatalogSnapshot | None = None
        self._fetched_at = 0.0
        self._announced = 0
        self._tried = 0
        self._forced_at: float | None = None

    def goal(self, target: int) -> int:
        """The revision to reach: `target` (a snapshot's) or an announced one, the newer."""
        return max(target, self._announced)

    def due(self, key: PermissionKey, target: int, now: float) -> bool:
        """Whether to fetch before deciding about `key` with a snapshot naming catalog revision
        `target`. A revision never asked for yet is fetched at once; an unknown key, an
        unreadable announcement, or a revision asked for but not served (authz lagging) at most
        once per refresh interval, so a flood of unknown keys cannot flood authz."""
        current = self.current
        if current is None:
            return True
        goal = self.goal(target)
        if current.revision < goal and goal > self._tried:
            return True
        forced = self._forced_at is not None and self._forced_at >= self._fetched_at
        stale = forced or current.revision < goal or current.catalog.get(key) is None
        return stale and now - self._fetched_at >= self._interval

    def stored(self, catalog: CatalogSnapshot, started: float, goal: int) -> None:
        """Record a catalog whose fetch started at `started` and aimed at revision `goal`."""
        self.current = catalog
        self._fetched_at = started
        self._tried = max(self._tried, goal)

    def announced(self, revision: int | None, now: float) -> None:
        """The catalog is now at `revision`; None: an announcement that could not be read
        (received at `now`: a catalog whose fetch started before it is stale)."""
        if revision is None:
            self._forced_at = now
        elif revision > self._announced:
            self._announced = revision

    def clear(self) -> None:
        """Forget the catalog (it is fetched again on next use)."""
        self.current = None
