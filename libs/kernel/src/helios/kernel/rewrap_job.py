"""Rewrap job (E6): move the data keys of a stored column forward to a key's new version.

After keyvault rotates an org's key, values written by `RowCipher` still carry data keys wrapped
under the old version, and KeyInventory counts them there; keyvault refuses to raise the minimum
decryption version while that count is not 0. `rewrap_column` walks a table in primary-key order
and replaces each value's wrapped data key by one wrapped under the current version
(`RowCipher.rewrap`: one keyvault Rewrap per distinct data key, the AES-GCM part unchanged), so
the old version's count drops to 0 and the minimum can be raised.

How it walks (so it can run beside live traffic, be stopped and be resumed):

- keyset pagination: each batch is the next `batch_size` primary keys after the last one seen,
  read and written in its own transaction; progress carries `last_id`, which `start_after`
  takes to resume there (a fresh run from the start is cheap too: values already on the target
  version are skipped from their header, without calling keyvault);
- the batch's rows are locked `FOR UPDATE SKIP LOCKED`: a row a live transaction holds is not
  waited for but counted as `busy` (run again later), and while the job holds a row no live
  write can slip between its read and its write;
- idempotent: a value whose wrapped key is already at `target_version` is skipped, so a second
  run rewraps nothing.

A value that is not a row secret or whose data key keyvault refuses (destroyed, disabled, not
of this org/table/column) is counted as `failed` (the first ids are kept) and left unchanged.
A key that was not rotated up to `target_version` (`StaleKeyVersionError`), keyvault being
unavailable, or any unexpected error stops the job: what the current batch already rewrapped is
written first (keyvault has already moved those data keys), then the error propagates.

KeyInventory counts data keys, not values, so "0 live data keys under version N" is necessary
but not sufficient before raising the minimum decryption version past N:

- many rows share one data key, and keyvault moves its count at the first Rewrap; until the job
  has walked the whole table, rows further on still carry the old wrapped form while the count
  already says 0. Raise the minimum only after a run whose result is `complete` (nothing failed
  or busy);
- a `RowCipher` that still caches a data key wrapped under the old version keeps writing values
  that carry it (until its `max_age`, 5 minutes by default, after the rotation). A last run
  after that age shows `rewrapped == 0` when nothing is left behind;
- rerun an interrupted job with the same `RowCipher` when possible: it remembers which wrapped
  keys it already rewrapped. A fresh one (another process) calls Rewrap again for a data key
  whose rows were only partly written, and keyvault then moves it a second time: the old
  version's count drops early (another data key's share) and the new version's count ends one
  too high, which would later keep it above 0.

Nothing here logs or reports a value, a key or a plaintext; progress holds only counts and ids.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy import Column, RowMapping, Table, bindparam, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from helios.kernel.errors import FailedPreconditionError, InvalidArgumentError
from helios.kernel.row_secrets import RowCipher, StaleKeyVersionError

__all__ = [
    "RewrapBatch",
    "RewrapProgress",
    "RewrapStore",
    "StoredValue",
    "rewrap_column",
    "run_rewrap",
]

MAX_FAILED_IDS = 100


@dataclass(frozen=True, slots=True)
class RewrapProgress:
    """Where a rewrap run stands, reported after each batch and returned at the end.

    `total` is the number of rows after the start position counted when the run began (rows
    inserted or deleted meanwhile make `seen` differ from it at the end). `seen` counts the rows
    of the batches walked so far, `rewrapped` those given a new wrapped key, `skipped` those
    already at the target version (or NULL), `failed` those left unchanged because they are
    malformed or keyvault refused their data key (`failed_ids`: the first of them), `busy`
    those locked by another transaction when their batch ran. `last_id` is the primary key the
    next batch starts after (pass it as `start_after` to resume).
    """

    total: int
    seen: int = 0
    rewrapped: int = 0
    skipped: int = 0
    failed: int = 0
    busy: int = 0
    elapsed: float = 0.0
    last_id: Any = None
    done: bool = False
    failed_ids: tuple[str, ...] = field(default=())

    @property
    def percent(self) -> float:
        """Share of the rows walked, 0..100; exactly 100 once the run is done."""
        if self.done:
            return 100.0
        if self.total <= 0:
            return 0.0
        return min(100.0, 100.0 * self.seen / self.total)

    @property
    def complete(self) -> bool:
        """Done with nothing failed or busy: every row walked is at the target version."""
        return self.done and self.failed == 0 and self.busy == 0


@dataclass(frozen=True, slots=True)
class StoredValue:
    """One locked row: its primary key, the org, table row id and stored value (HRS1 or None)."""

    key: Any
    org_id: str
    row_id: str
    value: bytes | None


class RewrapBatch(Protocol):
    """One batch inside its own transaction."""

    @property
    def window(self) -> Sequence[Any]:
        """The batch's primary keys in ascending order, locked by us or not."""
        ...

    @property
    def rows(self) -> Sequence[StoredValue]:
        """The rows of the window this transaction holds locked (the others are busy)."""
        ...

    async def write(self, updates: Sequence[tuple[Any, bytes]]) -> None:
        """Store new values by primary key (committed when the batch's context exits cleanly)."""
        ...


class RewrapStore(Protocol):
    """Where the values live: `rewrap_column` provides one over a SQLAlchemy table."""

    async def count(self, after: Any) -> int:
        """Rows with a primary key above `after` (all rows when it is None)."""
        ...

    def batch(self, after: Any, limit: int) -> AbstractAsyncContextManager[RewrapBatch | None]:
        """The next `limit` rows after `after` in a transaction; None when there are none."""
        ...


async def run_rewrap(
    store: RewrapStore,
    row_cipher: RowCipher,
    table_name: str,
    column_name: str,
    *,
    target_version: int,
    batch_size: int = 500,
    progress: Callable[[RewrapProgress], None] | None = None,
    start_after: Any = None,
    clock: Callable[[], float] = time.monotonic,
) -> RewrapProgress:
    """Rewrap every value of `store` whose data key is wrapped below `target_version`; see the
    module docstring. `table_name` and `column_name` are the names the values were encrypted
    with (`RowCipher.encrypt`'s table and column). Returns the final progress (`done`)."""
    if target_version < 1:
        raise ValueError("target_version must be at least 1")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = clock()
    state = RewrapProgress(total=await store.count(start_after), last_id=start_after)
    failed_ids: list[str] = []
    while True:
        stop: BaseException | None = None
        async with store.batch(state.last_id, batch_size) as batch:
            if batch is None:
                break
            locked = {row.key for row in batch.rows}
            updates: list[tuple[Any, bytes]] = []
            rewrapped = skipped = failed = 0
            for row in batch.rows:
                try:
                    new = await _rewrap_one(
                        row, row_cipher, table_name, column_name, target_version
                    )
                except StaleKeyVersionError as error:
                    if error.value is not None:  # keyvault moved its data key all the same
                        updates.append((row.key, error.value))
                    stop = error
                    break
                except (InvalidArgumentError, FailedPreconditionError):
                    failed += 1
                    if len(failed_ids) < MAX_FAILED_IDS:
                        failed_ids.append(row.row_id)
                    continue
                except Exception as error:  # written first, then re-raised
                    stop = error
                    break
                if new is None:
                    skipped += 1
                else:
                    updates.append((row.key, new))
                    rewrapped += 1
            if updates:
                await batch.write(updates)
            if stop is None:
                state = replace(
                    state,
                    seen=state.seen + len(batch.window),
                    rewrapped=state.rewrapped + rewrapped,
                    skipped=state.skipped + skipped,
                    failed=state.failed + failed,
                    busy=state.busy + sum(1 for key in batch.window if key not in locked),
                    last_id=batch.window[-1],
                    failed_ids=tuple(failed_ids),
                )
        if stop is not None:
            raise stop
        state = replace(state, elapsed=clock() - started)
        if progress is not None:
            progress(state)
    state = replace(state, elapsed=clock() - started, done=True)
    if progress is not None:
        progress(state)
    return state


async def _rewrap_one(
    row: StoredValue, cipher: RowCipher, table_name: str, column_name: str, target_version: int
) -> bytes | None:
    """The new value of `row`, or None when it is NULL or already at the target version."""
    if row.value is None:
        return None
    # RowCipher.rewrap reads the version from the header and calls keyvault only below target.
    return await cipher.rewrap(
        row.org_id, table_name, column_name, row.row_id, row.value, target_version=target_version
    )


async def rewrap_column(
    engine_or_sessions: AsyncEngine | async_sessionmaker[AsyncSession],
    table: Table,
    id_column: Column[Any] | str,
    value_column: Column[Any] | str,
    org_of_row: Callable[[RowMapping], str],
    row_cipher: RowCipher,
    table_name: str,
    column_name: str,
    *,
    target_version: int,
    batch_size: int = 500,
    progress: Callable[[RewrapProgress], None] | None = None,
    start_after: Any = None,
    row_id_of: Callable[[RowMapping], str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RewrapProgress:
    """Rewrap the row secrets in `table.value_column` up to `target_version` (see the module
    docstring). `id_column` is the table's (single-column, orderable) primary key;
    `org_of_row(row)` names the org a row's value was encrypted for and `row_id_of(row)` the
    row id it was encrypted with (default: the primary key as a string); both get the whole
    row. `table_name` and `column_name` are the names given to `RowCipher.encrypt`."""
    sessions = (
        async_sessionmaker(engine_or_sessions, expire_on_commit=False)
        if isinstance(engine_or_sessions, AsyncEngine)
        else engine_or_sessions
    )
    key = table.c[id_column] if isinstance(id_column, str) else id_column
    value = table.c[value_column] if isinstance(value_column, str) else value_column
    store = _SqlStore(
        sessions,
        table,
        key,
        value,
        org_of_row,
        row_id_of or (lambda row: str(row[key])),
    )
    return await run_rewrap(
        store,
        row_cipher,
        table_name,
        column_name,
        target_version=target_version,
        batch_size=batch_size,
        progress=progress,
        start_after=start_after,
        clock=clock,
    )


@dataclass(slots=True)
class _SqlBatch:
    window: list[Any]
    rows: list[StoredValue]
    write_rows: Callable[[Sequence[tuple[Any, bytes]]], Awaitable[None]]

    async def write(self, updates: Sequence[tuple[Any, bytes]]) -> None:
        await self.write_rows(updates)


class _SqlStore:
    """`RewrapStore` over a table: keyset pages, `FOR UPDATE SKIP LOCKED`, one transaction each."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        table: Table,
        key: Column[Any],
        value: Column[Any],
        org_of_row: Callable[[RowMapping], str],
        row_id_of: Callable[[RowMapping], str],
    ) -> None:
        self._sessions = sessions
        self._table = table
        self._key = key
        self._value = value
        self._org_of_row = org_of_row
        self._row_id_of = row_id_of

    def _after(self, after: Any) -> Any:
        return true() if after is None else self._key > after

    async def count(self, after: Any) -> int:
        async with self._sessions() as session:
            counted = await session.execute(
                select(func.count()).select_from(self._table).where(self._after(after))
            )
            return int(counted.scalar_one())

    @asynccontextmanager
    async def batch(self, after: Any, limit: int) -> AsyncIterator[_SqlBatch | None]:
        async with self._sessions() as session, session.begin():
            window = list(
                (
                    await session.execute(
                        select(self._key).where(self._after(after)).order_by(self._key).limit(limit)
                    )
                ).scalars()
            )
            if not window:
                yield None
                return
            # The window was read without locks; now lock what nobody else holds. Rows inserted
            # into the window meanwhile are taken too, rows locked elsewhere are left (busy).
            locked = (
                (
                    await session.execute(
                        select(self._table)
                        .where(self._after(after), self._key <= window[-1])
                        .order_by(self._key)
                        .with_for_update(skip_locked=True)
                    )
                )
                .mappings()
                .all()
            )
            rows = [
                StoredValue(
                    key=row[self._key],
                    org_id=self._org_of_row(row),
                    row_id=self._row_id_of(row),
                    value=None if row[self._value] is None else bytes(row[self._value]),
                )
                for row in locked
            ]
            known = set(window)
            window += [row.key for row in rows if row.key not in known]
            window.sort()

            async def write(updates: Sequence[tuple[Any, bytes]]) -> None:
                await session.execute(
                    update(self._table)
                    .where(self._key == bindparam("rewrap_key"))
                    .values({self._value.name: bindparam("rewrap_value")}),
                    [{"rewrap_key": k, "rewrap_value": v} for k, v in updates],
                )

            yield _SqlBatch(window=window, rows=rows, write_rows=write)
