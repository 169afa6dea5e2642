"""Rewrap (E6): RowCipher.rewrap and the rewrap job move stored data keys to a key's new version,
one keyvault call per data key, reporting progress; already-current values are left alone."""

from __future__ import annotations

import itertools
import os
import struct
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from helios.kernel.errors import InvalidArgumentError, UnavailableError
from helios.kernel.rewrap_job import RewrapProgress, StoredValue, run_rewrap
from helios.kernel.row_secrets import MAGIC, RowCipher, StaleKeyVersionError, wrapped_version

pytestmark = pytest.mark.unit

ORG, OTHER_ORG = "org-a", "org-b"
KEY_ID = str(uuid.UUID("11111111-1111-1111-1111-111111111111"))
TABLE, COLUMN = "contacts", "phone"
_HEADER = struct.Struct(">3sBBB16sI12s")


class FakeKeyvaultDataKeys:
    """Test double of keyvault's data-key RPCs (no keyvault runs in unit tests). It behaves like
    keyvault where the rewrap job can tell: real random data keys wrapped with AES-256-GCM in
    keyvault's header format (b"HLV", format 1, kind 2, algorithm 1, key id, version uint32,
    nonce) under one KEK per key version, bound to the header and (org, table, column); RotateKey;
    Rewrap re-seals under the current version and moves one live data key in the inventory,
    which it keeps per (key id, version). It counts every call; `fail_rewrap_after` makes Rewrap
    report keyvault unavailable after that many calls."""

    def __init__(self) -> None:
        self._keks: dict[tuple[str, int], bytes] = {}
        self.current: dict[str, int] = {}
        self.live: Counter[tuple[str, int]] = Counter()
        self.calls: Counter[str] = Counter()
        self.fail_rewrap_after: int | None = None

    def rotate(self, key_id: str) -> int:
        self.current[key_id] = self.current.get(key_id, 1) + 1
        return self.current[key_id]

    def _kek(self, key_id: str, version: int) -> bytes:
        return self._keks.setdefault((key_id, version), AESGCM.generate_key(bit_length=256))

    @staticmethod
    def _context(org_id: str, table: str, column: str) -> bytes:
        return "\x00".join((org_id, table, "", column)).encode()

    def _seal(self, key_id: str, data_key: bytes, context: bytes) -> bytes:
        version = self.current.setdefault(key_id, 1)
        header = _HEADER.pack(b"HLV", 1, 2, 1, uuid.UUID(key_id).bytes, version, os.urandom(12))
        return header + AESGCM(self._kek(key_id, version)).encrypt(
            header[-12:], data_key, header + context
        )

    def _open(self, wrapped: bytes, context: bytes) -> tuple[str, int, bytes]:
        try:
            _, _, _, _, raw_id, version, nonce = _HEADER.unpack_from(wrapped)
            key_id = str(uuid.UUID(bytes=raw_id))
            header = wrapped[: _HEADER.size]
            data_key = AESGCM(self._keks[(key_id, version)]).decrypt(
                nonce, wrapped[_HEADER.size :], header + context
            )
        except (struct.error, InvalidTag, KeyError, ValueError):
            raise InvalidArgumentError("the data key does not open in this context") from None
        return key_id, version, data_key

    async def generate(
        self, org_id: str, key_id: str, table: str, column: str
    ) -> tuple[bytes, bytes]:
        self.calls["generate"] += 1
        data_key = os.urandom(32)
        wrapped = self._seal(key_id, data_key, self._context(org_id, table, column))
        self.live[(key_id, self.current[key_id])] += 1
        return data_key, wrapped

    async def unwrap(self, org_id: str, wrapped: bytes, table: str, column: str) -> bytes:
        self.calls["unwrap"] += 1
        return self._open(wrapped, self._context(org_id, table, column))[2]

    async def rewrap(self, org_id: str, wrapped: bytes, table: str, column: str) -> bytes:
        self.calls["rewrap"] += 1
        if self.fail_rewrap_after is not None and self.calls["rewrap"] > self.fail_rewrap_after:
            raise UnavailableError("keyvault is unavailable, try again later")
        context = self._context(org_id, table, column)
        key_id, source, data_key = self._open(wrapped, context)
        new = self._seal(key_id, data_key, context)
        target = self.current[key_id]
        if target != source:
            if self.live[(key_id, source)] > 0:
                self.live[(key_id, source)] -= 1
            self.live[(key_id, target)] += 1
        return new

    def inventory(self, key_id: str) -> dict[int, int]:
        return {v: n for (k, v), n in sorted(self.live.items()) if k == key_id}


@dataclass
class _MemoryBatch:
    window: list[int]
    rows: list[StoredValue]
    pending: dict[int, bytes] = field(default_factory=dict)

    async def write(self, updates: Sequence[tuple[Any, bytes]]) -> None:
        self.pending.update(updates)


class MemoryTable:
    """Test double of a table for the job (unit tests run no database): rows by primary key,
    keys `locked` by "another transaction" (skipped as FOR UPDATE SKIP LOCKED would), and each
    batch's writes applied only when the batch ends without an error, like a transaction."""

    def __init__(self, rows: dict[int, tuple[str, bytes | None]]) -> None:
        self.rows = dict(rows)
        self.locked: set[int] = set()

    async def count(self, after: Any) -> int:
        return sum(1 for key in self.rows if after is None or key > after)

    @asynccontextmanager
    async def batch(self, after: Any, limit: int) -> AsyncIterator[_MemoryBatch | None]:
        window = sorted(key for key in self.rows if after is None or key > after)[:limit]
        if not window:
            yield None
            return
        batch = _MemoryBatch(
            window=window,
            rows=[
                StoredValue(key=k, org_id=self.rows[k][0], row_id=str(k), value=self.rows[k][1])
                for k in window
                if k not in self.locked
            ],
        )
        yield batch
        for key, value in batch.pending.items():
            self.rows[key] = (self.rows[key][0], value)


def _cipher(client: FakeKeyvaultDataKeys, **bounds: Any) -> RowCipher:
    return RowCipher(client, lambda org_id: KEY_ID, **bounds)


def _wrapped(blob: bytes) -> bytes:
    (length,) = struct.unpack_from(">H", blob, 4)
    return blob[6 : 6 + length]


def _sealed_part(blob: bytes) -> bytes:
    """Nonce, ciphertext and tag: what follows the wrapped data key."""
    return blob[6 + len(_wrapped(blob)) :]


def _plain(row: int) -> bytes:
    return f"+41 79 555 {row:04d}".encode()


async def _table(client: FakeKeyvaultDataKeys, rows: int, **bounds: Any) -> MemoryTable:
    writer = _cipher(client, **bounds)
    return MemoryTable(
        {
            row: (ORG, await writer.encrypt(ORG, TABLE, COLUMN, str(row), _plain(row)))
            for row in range(1, rows + 1)
        }
    )


async def test_e6_job_reports_monotonic_progress_to_100_and_moves_every_data_key() -> None:
    """E6: 1234 rows under 25 data keys (50 values each) at version 1; after RotateKey the job
    (batches of 100) reports progress after each batch (seen, counts, percent and elapsed never go
    back; the last report is done at exactly 100 %), calls Rewrap once per data key (25), moves
    the inventory from v1 (0 left) to v2 (25), and every row still decrypts, with a fresh
    RowCipher, to its plaintext. A second run rewraps nothing and calls keyvault not at all."""
    client = FakeKeyvaultDataKeys()
    table = await _table(client, 1234, max_uses=50)
    assert client.calls["generate"] == 25
    assert {wrapped_version(value) for _, value in table.rows.values() if value} == {1}
    assert client.rotate(KEY_ID) == 2
    ticks = iter(range(10_000))
    reports: list[RewrapProgress] = []

    result = await run_rewrap(
        table,
        _cipher(client),
        TABLE,
        COLUMN,
        target_version=2,
        batch_size=100,
        progress=reports.append,
        clock=lambda: float(next(ticks)),
    )

    assert len(reports) == 14  # 13 batches, then the final report
    for before, after in itertools.pairwise(reports):
        assert after.seen >= before.seen
        assert after.rewrapped >= before.rewrapped
        assert after.percent >= before.percent
        assert after.elapsed >= before.elapsed
    assert [r.done for r in reports] == [False] * 13 + [True]
    assert reports[0].percent == pytest.approx(100 * 100 / 1234)
    assert reports[-1] == result
    assert result.percent == 100.0
    assert (result.total, result.seen, result.rewrapped, result.skipped) == (1234, 1234, 1234, 0)
    assert (result.failed, result.busy, result.complete) == (0, 0, True)
    assert result.last_id == 1234
    assert client.calls["rewrap"] == 25
    assert client.inventory(KEY_ID) == {1: 0, 2: 25}
    assert {wrapped_version(value) for _, value in table.rows.values() if value} == {2}

    reader = _cipher(client)
    for row, (org, value) in table.rows.items():
        assert value is not None
        assert await reader.decrypt(org, TABLE, COLUMN, str(row), value) == _plain(row)
    assert client.calls["unwrap"] == 25

    again = await run_rewrap(table, _cipher(client), TABLE, COLUMN, target_version=2)
    assert (again.rewrapped, again.skipped, again.complete) == (0, 1234, True)
    assert client.calls["rewrap"] == 25
    assert client.inventory(KEY_ID) == {1: 0, 2: 25}


async def test_e6_rows_sharing_a_data_key_cost_one_rewrap_and_keep_their_ciphertext() -> None:
    """E6: 100 values sharing one wrapped data key are rewrapped with ONE Rewrap call; each keeps
    its nonce and AES-GCM part byte for byte, all carry the same new wrapped key at version 2,
    and they decrypt. The inventory moves one data key, not 100."""
    client = FakeKeyvaultDataKeys()
    writer = _cipher(client)
    values = [await writer.encrypt(ORG, TABLE, COLUMN, str(i), _plain(i)) for i in range(100)]
    client.rotate(KEY_ID)
    cipher = _cipher(client)

    rewrapped = [
        await cipher.rewrap(ORG, TABLE, COLUMN, str(i), value, target_version=2)
        for i, value in enumerate(values)
    ]

    assert client.calls["rewrap"] == 1
    assert client.inventory(KEY_ID) == {1: 0, 2: 1}
    assert all(new is not None and new.startswith(MAGIC) for new in rewrapped)
    assert len({_wrapped(new) for new in rewrapped if new}) == 1
    for i, (old, new) in enumerate(zip(values, rewrapped, strict=True)):
        assert new is not None
        assert wrapped_version(old) == 1
        assert wrapped_version(new) == 2
        assert _sealed_part(new) == _sealed_part(old)
        assert await cipher.decrypt(ORG, TABLE, COLUMN, str(i), new) == _plain(i)


async def test_e6_already_current_values_are_skipped_without_calling_keyvault() -> None:
    """E6: a value whose key is already at the target version is skipped from its header (no
    Rewrap call); without a target, keyvault's answer "same version" also means nothing to do;
    NULL values are skipped by the job."""
    client = FakeKeyvaultDataKeys()
    client.rotate(KEY_ID)
    value = await _cipher(client).encrypt(ORG, TABLE, COLUMN, "7", b"already on v2")
    assert wrapped_version(value) == 2
    cipher = _cipher(client)

    assert await cipher.rewrap(ORG, TABLE, COLUMN, "7", value, target_version=2) is None
    assert await cipher.rewrap(ORG, TABLE, COLUMN, "7", value, target_version=1) is None
    assert client.calls["rewrap"] == 0
    assert await cipher.rewrap(ORG, TABLE, COLUMN, "7", value) is None
    assert client.calls["rewrap"] == 1
    assert client.inventory(KEY_ID) == {2: 1}

    table = MemoryTable({1: (ORG, value), 2: (ORG, None)})
    result = await run_rewrap(table, _cipher(client), TABLE, COLUMN, target_version=2)
    assert (result.seen, result.rewrapped, result.skipped, result.complete) == (2, 0, 2, True)
    assert table.rows == {1: (ORG, value), 2: (ORG, None)}
    assert client.calls["rewrap"] == 1


async def test_e6_refusals_leave_values_unchanged() -> None:
    """E6 refusals: a target above keyvault's current version raises StaleKeyVersionError; the
    data key keyvault moved all the same comes back in the error (and the job writes that one row
    before it stops), nothing else changes; a corrected run with the same RowCipher finishes
    without moving the data key twice. Malformed values, a value whose data key belongs to
    another org and a wrapped key not in keyvault's format are counted as failed (ids kept,
    values unchanged) while the good rows are rewrapped; bad arguments are refused."""
    client = FakeKeyvaultDataKeys()
    table = await _table(client, 5)
    before = dict(table.rows)
    client.rotate(KEY_ID)
    rewrapper = _cipher(client)

    with pytest.raises(StaleKeyVersionError, match="rotate the key first") as stale:
        await rewrapper.rewrap(ORG, TABLE, COLUMN, "1", before[1][1] or b"", target_version=3)
    moved = stale.value.value
    assert moved is not None
    assert wrapped_version(moved) == 2
    assert await _cipher(client).decrypt(ORG, TABLE, COLUMN, "1", moved) == _plain(1)
    assert client.inventory(KEY_ID) == {1: 0, 2: 1}
    with pytest.raises(StaleKeyVersionError):
        await run_rewrap(table, rewrapper, TABLE, COLUMN, target_version=3)
    assert wrapped_version(table.rows[1][1] or b"") == 2
    assert {k: v for k, v in table.rows.items() if k != 1} == {
        k: v for k, v in before.items() if k != 1
    }
    assert client.inventory(KEY_ID) == {1: 0, 2: 1}
    fixed = await run_rewrap(table, rewrapper, TABLE, COLUMN, target_version=2)
    assert (fixed.rewrapped, fixed.skipped, fixed.complete) == (4, 1, True)
    assert client.inventory(KEY_ID) == {1: 0, 2: 1}
    table = MemoryTable(before)

    good = before[1][1]
    assert good is not None
    foreign_wrapped = b"XYZ" + _wrapped(good)[3:]
    not_keyvault = (
        MAGIC + struct.pack(">H", len(foreign_wrapped)) + foreign_wrapped + os.urandom(40)
    )
    table.rows[6] = (ORG, b"not a row secret")
    table.rows[7] = (OTHER_ORG, good)  # its data key is bound to ORG: keyvault refuses it
    table.rows[8] = (ORG, not_keyvault)
    assert [wrapped_version(table.rows[k][1] or b"") for k in range(1, 6)] == [1] * 5
    with pytest.raises(InvalidArgumentError):
        wrapped_version(b"not a row secret")
    with pytest.raises(InvalidArgumentError):
        wrapped_version(not_keyvault)
    with pytest.raises(InvalidArgumentError):
        await _cipher(client).rewrap(OTHER_ORG, TABLE, COLUMN, "7", good, target_version=2)
    with pytest.raises(InvalidArgumentError, match="row_id must not be empty"):
        await _cipher(client).rewrap(ORG, TABLE, COLUMN, "", good, target_version=2)

    result = await run_rewrap(table, rewrapper, TABLE, COLUMN, target_version=2)
    assert (result.rewrapped, result.failed, result.failed_ids) == (5, 3, ("6", "7", "8"))
    assert (result.done, result.complete, result.percent) == (True, False, 100.0)
    assert table.rows[6] == (ORG, b"not a row secret")
    assert table.rows[7] == (OTHER_ORG, good)
    assert table.rows[8] == (ORG, not_keyvault)
    assert client.inventory(KEY_ID) == {1: 0, 2: 1}

    for target, size in ((0, 500), (2, 0)):
        with pytest.raises(ValueError, match="must be at least 1"):
            await run_rewrap(
                table, _cipher(client), TABLE, COLUMN, target_version=target, batch_size=size
            )


async def test_e6_locked_rows_are_busy_and_a_later_run_or_resume_finishes_them() -> None:
    """E6 beside live traffic: rows another transaction holds are skipped and counted as busy
    (left unchanged, the run is not complete); a run after they are released rewraps exactly
    them. A run stopped after its first batch resumes from its last_id."""
    client = FakeKeyvaultDataKeys()
    table = await _table(client, 30, max_uses=10)
    client.rotate(KEY_ID)
    table.locked = {4, 17}
    locked_before = {k: table.rows[k] for k in table.locked}

    rewrapper = _cipher(client)
    first = await run_rewrap(table, rewrapper, TABLE, COLUMN, target_version=2, batch_size=8)
    assert (first.seen, first.rewrapped, first.busy, first.complete) == (30, 28, 2, False)
    assert {k: table.rows[k] for k in table.locked} == locked_before

    table.locked = set()
    second = await run_rewrap(table, rewrapper, TABLE, COLUMN, target_version=2)
    assert (second.rewrapped, second.skipped, second.complete) == (2, 28, True)
    assert client.inventory(KEY_ID) == {1: 0, 2: 3}

    client.rotate(KEY_ID)

    class StopError(Exception):
        pass

    def stop_after_first(report: RewrapProgress) -> None:
        raise StopError(report.last_id)

    with pytest.raises(StopError) as stopped:
        await run_rewrap(
            table,
            rewrapper,
            TABLE,
            COLUMN,
            target_version=3,
            batch_size=8,
            progress=stop_after_first,
        )
    (last_id,) = stopped.value.args
    assert last_id == 8
    assert sorted(k for k, (_, v) in table.rows.items() if v and wrapped_version(v) == 3) == list(
        range(1, 9)
    )
    resumed = await run_rewrap(
        table, rewrapper, TABLE, COLUMN, target_version=3, start_after=last_id
    )
    assert (resumed.total, resumed.seen, resumed.rewrapped, resumed.complete) == (22, 22, 22, True)
    assert client.inventory(KEY_ID) == {1: 0, 2: 0, 3: 3}
    assert {wrapped_version(v) for _, v in table.rows.values() if v} == {3}
    reader = _cipher(client)
    for row, (org, value) in table.rows.items():
        assert value is not None
        assert await reader.decrypt(org, TABLE, COLUMN, str(row), value) == _plain(row)


async def test_e6_an_outage_stops_the_job_after_writing_what_keyvault_already_moved() -> None:
    """E6: when keyvault becomes unavailable mid-batch, the rows rewrapped before (whose data key
    keyvault already moved to v2) are written, then UnavailableError propagates; a rerun
    finishes the rest and the inventory ends v1 0 / v2 3."""
    client = FakeKeyvaultDataKeys()
    table = await _table(client, 30, max_uses=10)
    client.rotate(KEY_ID)
    client.fail_rewrap_after = 1

    rewrapper = _cipher(client)
    with pytest.raises(UnavailableError):
        await run_rewrap(table, rewrapper, TABLE, COLUMN, target_version=2)
    versions = {k: wrapped_version(v) for k, (_, v) in table.rows.items() if v}
    assert [k for k, version in versions.items() if version == 2] == list(range(1, 11))
    assert client.inventory(KEY_ID) == {1: 2, 2: 1}

    client.fail_rewrap_after = None
    result = await run_rewrap(table, rewrapper, TABLE, COLUMN, target_version=2)
    assert (result.rewrapped, result.skipped, result.complete) == (20, 10, True)
    assert client.inventory(KEY_ID) == {1: 0, 2: 3}


async def test_e6_a_writer_that_rewrapped_its_data_key_writes_the_new_version() -> None:
    """E6: once a RowCipher has rewrapped the data key it encrypts with, its next values carry the
    new wrapped key (keyvault counts that data key under v2 now) without a new GenerateDataKey,
    and it reads them without DecryptDataKey."""
    client = FakeKeyvaultDataKeys()
    writer = _cipher(client)
    old = await writer.encrypt(ORG, TABLE, COLUMN, "1", _plain(1))
    client.rotate(KEY_ID)
    assert await writer.rewrap(ORG, TABLE, COLUMN, "1", old, target_version=2) is not None

    fresh = await writer.encrypt(ORG, TABLE, COLUMN, "2", _plain(2))

    assert wrapped_version(fresh) == 2
    assert await writer.decrypt(ORG, TABLE, COLUMN, "2", fresh) == _plain(2)
    assert (client.calls["generate"], client.calls["unwrap"]) == (1, 0)
    assert client.inventory(KEY_ID) == {1: 0, 2: 1}
