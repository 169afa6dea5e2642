"""Subject snapshots per (org, actor), dropped when an announced change makes them stale."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from helios.authz_client.snapshot import SubjectKey, SubjectSnapshot

__all__ = ["CachedSnapshot", "SnapshotCache"]


@dataclass(frozen=True, slots=True)
class CachedSnapshot:
    """A snapshot and the monotonic time its fetch started (conservative for its age)."""

    snapshot: SubjectSnapshot
    fetched_at: float


class SnapshotCache:
    """Bounded LRU of snapshots. Not thread-safe: one event loop owns it. An announced org
    revision is also a floor: a snapshot read below it (a fetch that raced the change) is not
    stored, so an announcement can never be undone by a slow fetch."""

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._entries: OrderedDict[SubjectKey, CachedSnapshot] = OrderedDict()
        self._floors: dict[str, int] = {}
        self._by_org: dict[str, set[SubjectKey]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: SubjectKey) -> CachedSnapshot | None:
        """The cached snapshot of `key`, or None; freshness is the caller's to judge."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def floor(self, org_id: str) -> int:
        """The newest revision announced for the org (0 when none): the least a fetch for it
        should ask authz for."""
        return self._floors.get(org_id, 0)

    def put(self, key: SubjectKey, snapshot: SubjectSnapshot, fetched_at: float) -> bool:
        """Store `snapshot` unless it is older than the org's announced revision or than the
        entry already held; returns whether it was stored. Evicts the least recently used."""
        if snapshot.revision < self._floors.get(snapshot.org_id, 0):
            return False
        held = self._entries.get(key)
        if held is not None and held.snapshot.revision > snapshot.revision:
            return False
        self._entries[key] = CachedSnapshot(snapshot, fetched_at)
        self._entries.move_to_end(key)
        self._by_org.setdefault(key[0], set()).add(key)
        while len(self._entries) > self._max:
            oldest, _ = self._entries.popitem(last=False)
            self._unindex(oldest)
        return True

    def announce(self, org_id: str, revision: int, user_ids: Iterable[str] = ()) -> int:
        """The org's policy is now at `revision`: drop its snapshots read below it, of
        `user_ids` only or of every user when empty; returns how many were dropped. Idempotent;
        announcements may arrive out of order (the floor only rises)."""
        if revision > self._floors.get(org_id, 0):
            self._floors[org_id] = revision
        users = frozenset(user_ids)
        stale = [
            key
            for key in self._by_org.get(org_id, ())
            if (not users or key[1] in users) and self._entries[key].snapshot.revision < revision
        ]
        for key in stale:
            self._remove(key)
        return len(stale)

    def drop_org(self, org_id: str) -> None:
        """Forget every snapshot of the org (an announcement that could not be read)."""
        for key in list(self._by_org.get(org_id, ())):
            self._remove(key)

    def clear(self) -> None:
        """Forget every snapshot (the floors stay: they are facts about the orgs)."""
        self._entries.clear()
        self._by_org.clear()

    def _remove(self, key: SubjectKey) -> None:
        del self._entries[key]
        self._unindex(key)

    def _unindex(self, key: SubjectKey) -> None:
        keys = self._by_org.get(key[0])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_org[key[0]]
