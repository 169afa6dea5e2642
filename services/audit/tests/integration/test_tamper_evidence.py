"""Tamper evidence against real PostgreSQL (L1), and offline bundles end to end (L2).

About 200 events for two orgs go in through AuditService.ingest; checkpoints are then written
into audit.checkpoints signed with an Ed25519 key made here -- the sealing service, which signs
through keyvault, is being written separately, and the verifier only needs public keys. Each
attack is then done as the database superuser with the append-only trigger bypassed
(`SET LOCAL session_replication_role = replica`, superuser only), inside the test's transaction
(rolled back afterwards) since the rows are not committed, and `verify` must name it with its
index. Bundles are checked with `python -m helios.audit verify --bundle` in a subprocess."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.audit.cli import main, verify_log
from helios.audit.domain import merkle
from helios.audit.domain.bundle import write_bundle
from helios.audit.domain.checkpoint import Checkpoint, checkpoint_note
from helios.audit.domain.events import Incoming
from helios.audit.domain.leaf import LEAF_FIELDS, leaf_bytes
from helios.audit.domain.verification import Report, keys_from_jwks
from helios.audit.service import AuditService
from helios.audit.store import tables
from helios.audit.store.reader import PgLogReader
from helios.audit.store.rows import leaf_record
from helios.proto.audit.v1 import events_pb2

MakeEvent = Callable[..., events_pb2.AuditEvent]
KID = "local-test-key:1"
SIZES_A = (32, 100, 120)  # org A: 120 events
SIZES_B = (50, 80)  # org B: 80 events


@dataclass
class Seeded:
    """Two orgs' logs with checkpoints, and the public keys that verify them."""

    org_a: str
    org_b: str
    jwks: list[dict[str, str]]

    @property
    def keys(self) -> dict[str, Any]:
        return keys_from_jwks(self.jwks)


async def _leaf_hashes(connection: AsyncConnection, org: str) -> list[bytes]:
    result = await connection.exec_driver_sql(
        "SELECT leaf_hash FROM audit.audit_log WHERE org_id = %(org)s ORDER BY org_seq",
        {"org": org},
    )
    return [bytes(value) for (value,) in result]


async def _seal(
    sessions: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
    key: Ed25519PrivateKey,
    org: str,
    sizes: Sequence[int],
) -> None:
    """Chained checkpoints at `sizes`, signed here (the sealer's job, done by hand)."""
    hashes = await _leaf_hashes(connection, org)
    previous = (0, merkle.EMPTY_ROOT)
    sealed_at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    rows = []
    for size in sizes:
        root = merkle.root_from_leaves(hashes[:size])
        note = checkpoint_note(org, size, root, sealed_at, *previous)
        rows.append(
            {
                "org_id": org,
                "tree_size": size,
                "root_hash": root,
                "sealed_at": sealed_at,
                "previous_size": previous[0],
                "previous_root_hash": previous[1],
                "key_id": KID,
                "signature": key.sign(note),
            }
        )
        previous = (size, root)
        sealed_at += dt.timedelta(minutes=1)
    async with sessions() as session, session.begin():
        await session.execute(tables.checkpoints.insert(), rows)


@pytest.fixture
async def seeded(
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    db_connection: AsyncConnection,
    make_event: MakeEvent,
) -> Seeded:
    org_a, org_b = str(uuid.uuid4()), str(uuid.uuid4())
    start = dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)
    events = [
        make_event(
            org_id=org_a if i % 5 < 3 else org_b,
            occurred_at=start + dt.timedelta(seconds=37 * i, microseconds=i),
            diff={"display_name": {"from": f"name {i}", "to": f"name {i + 1}"}, "n": i},
        )
        for i in range(200)
    ]
    for first in range(0, 200, 25):
        batch = [
            Incoming(f"audit.identity.{i}", events[i].SerializeToString(), 50_000 + i)
            for i in range(first, first + 25)
        ]
        assert await audit_service.ingest(batch) == 25
    key = Ed25519PrivateKey.generate()
    await _seal(db_session, db_connection, key, org_a, SIZES_A)
    await _seal(db_session, db_connection, key, org_b, SIZES_B)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return Seeded(org_a, org_b, [{"kid": KID, "kty": "OKP", "crv": "Ed25519", "x": x}])


async def _verify(sessions: async_sessionmaker[AsyncSession], seeded: Seeded, org: str) -> Report:
    reader = PgLogReader(sessions, page_size=32)  # several keyset pages per org
    return await verify_log(
        reader,
        org,
        await reader.checkpoints(org),
        seeded.keys,
        expected_size=await reader.size(org),
    )


async def _as_superuser(connection: AsyncConnection, *statements: str, **params: Any) -> None:
    """What a database superuser can do: the append-only trigger is skipped in replica mode."""
    async with connection.begin_nested():
        await connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for statement in statements:
            await connection.exec_driver_sql(statement, params)
        await connection.exec_driver_sql("SET LOCAL session_replication_role = origin")


def _kinds(report: Report) -> list[tuple[str, int | None]]:
    return [(f.kind, f.index) for f in report.findings]


async def test_l1_untouched_logs_verify(
    seeded: Seeded, db_session: async_sessionmaker[AsyncSession], db_connection: AsyncConnection
) -> None:
    superuser = await db_connection.exec_driver_sql("SELECT current_setting('is_superuser')")
    assert superuser.scalar() == "on"
    for org, leaves, checkpoints in ((seeded.org_a, 120, 3), (seeded.org_b, 80, 2)):
        report = await _verify(db_session, seeded, org)
        assert report.ok, report.findings
        assert (report.leaves_read, report.size, report.checkpoints_verified) == (
            leaves,
            leaves,
            checkpoints,
        )
    reader = PgLogReader(db_session)
    assert {seeded.org_a, seeded.org_b} <= set(await reader.orgs())
    assert [c.tree_size for c in await reader.checkpoints(seeded.org_a)] == list(SIZES_A)
    assert await reader.size(seeded.org_b) == 80
    assert await reader.size("no-such-org") is None


async def test_l1_trigger_still_refuses_without_the_bypass(
    seeded: Seeded, db_connection: AsyncConnection
) -> None:
    """The attacks below need the superuser's bypass: plain UPDATE is refused."""

    async def update() -> None:
        async with db_connection.begin_nested():
            await db_connection.exec_driver_sql(
                "UPDATE audit.audit_log SET action = 'x' WHERE org_id = %(org)s",
                {"org": seeded.org_a},
            )

    with pytest.raises(DBAPIError, match="append-only"):
        await update()


async def test_l1_updated_diff_is_found_at_its_index(
    seeded: Seeded, db_session: async_sessionmaker[AsyncSession], db_connection: AsyncConnection
) -> None:
    await _as_superuser(
        db_connection,
        'UPDATE audit.audit_log SET diff = \'{"display_name": {"to": "mallory"}}\''
        " WHERE org_id = %(org)s AND org_seq = 57",
        org=seeded.org_a,
    )
    report = await _verify(db_session, seeded, seeded.org_a)
    assert not report.ok
    assert report.first_bad_index == 57
    assert _kinds(report) == [("altered", 57), ("checkpoint_root", 57), ("checkpoint_root", None)]
    assert (await _verify(db_session, seeded, seeded.org_b)).ok


async def test_l1_update_with_rewritten_leaf_hash_is_caught_by_the_checkpoint(
    seeded: Seeded, db_session: async_sessionmaker[AsyncSession], db_connection: AsyncConnection
) -> None:
    """A careful attacker recomputes the row's leaf_hash too: the signed root still differs,
    and the first bad index is where the last matching checkpoint stops vouching (32)."""
    rows = await db_connection.execute(
        tables.audit_log.select().where(
            tables.audit_log.c.org_id == seeded.org_a, tables.audit_log.c.org_seq == 57
        )
    )
    row = dict(rows.mappings().one())
    row["action"] = "identity.user.read"
    forged = merkle.leaf_hash(leaf_bytes(leaf_record(row, 57)))
    await _as_superuser(
        db_connection,
        "UPDATE audit.audit_log SET action = 'identity.user.read', leaf_hash = %(leaf)s"
        " WHERE org_id = %(org)s AND org_seq = 57",
        org=seeded.org_a,
        leaf=forged,
    )
    report = await _verify(db_session, seeded, seeded.org_a)
    assert _kinds(report) == [("checkpoint_root", 32), ("checkpoint_root", None)]
    assert report.first_bad_index == 32


async def test_l1_deleted_row_is_a_missing_index(
    seeded: Seeded, db_session: async_sessionmaker[AsyncSession], db_connection: AsyncConnection
) -> None:
    await _as_superuser(
        db_connection,
        "DELETE FROM audit.audit_log WHERE org_id = %(org)s AND org_seq = 57",
        org=seeded.org_a,
    )
    report = await _verify(db_session, seeded, seeded.org_a)
    assert _kinds(report) == [("missing", 57)]
    assert report.first_bad_index == 57
    assert report.checkpoints_verified == 1


async def test_l1_swapped_rows_are_altered_at_both_indexes(
    seeded: Seeded, db_session: async_sessionmaker[AsyncSession], db_connection: AsyncConnection
) -> None:
    """Every committed column but the unique event id exchanged between rows 10 and 90."""
    columns = [c for c in LEAF_FIELDS if c not in {"index", "event_id", "org_id"}]
    assignments = ", ".join(f"{c} = o.{c}" for c in columns)
    await _as_superuser(
        db_connection,
        f"UPDATE audit.audit_log AS t SET {assignments} FROM audit.audit_log AS o"  # noqa: S608 - column names from LEAF_FIELDS
        " WHERE t.org_id = %(org)s AND o.org_id = %(org)s"
        " AND ((t.org_seq = 10 AND o.org_seq = 90) OR (t.org_seq = 90 AND o.org_seq = 10))",
        org=seeded.org_a,
    )
    report = await _verify(db_session, seeded, seeded.org_a)
    assert report.first_bad_index == 10
    assert [k for k in _kinds(report) if k[0] == "altered"] == [("altered", 10), ("altered", 90)]


async def test_l1_reordered_rows_are_found(
    seeded: Seeded, db_session: async_sessionmaker[AsyncSession], db_connection: AsyncConnection
) -> None:
    """Rows 20 and 21 exchange positions (org_seq), each keeping its stored hash."""
    move = "UPDATE audit.audit_log SET org_seq = %(to)s WHERE org_id = %(org)s AND org_seq = %(at)s"
    async with db_connection.begin_nested():
        await db_connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for at, to in ((20, -1), (21, 20), (-1, 21)):
            await db_connection.exec_driver_sql(move, {"org": seeded.org_a, "at": at, "to": to})
        await db_connection.exec_driver_sql("SET LOCAL session_replication_role = origin")
    report = await _verify(db_session, seeded, seeded.org_a)
    assert report.first_bad_index == 20
    assert [k for k in _kinds(report) if k[0] == "altered"] == [("altered", 20), ("altered", 21)]


async def test_l1_cut_tail_is_truncation(
    seeded: Seeded, db_session: async_sessionmaker[AsyncSession], db_connection: AsyncConnection
) -> None:
    """The last 5 rows deleted after the checkpoint of size 120 covered them, and the log's
    recorded size lowered to match."""
    await _as_superuser(
        db_connection,
        "DELETE FROM audit.audit_log WHERE org_id = %(org)s AND org_seq >= 115",
        "UPDATE audit.org_logs SET size = 115 WHERE org_id = %(org)s",
        org=seeded.org_a,
    )
    report = await _verify(db_session, seeded, seeded.org_a)
    assert _kinds(report) == [("truncated", 115)]
    assert "a signed checkpoint covers 120" in report.findings[0].detail
    assert report.checkpoints_verified == 2


async def test_l1_deleted_checkpoint_breaks_the_chain(
    seeded: Seeded, db_session: async_sessionmaker[AsyncSession], db_connection: AsyncConnection
) -> None:
    await db_connection.exec_driver_sql(
        "DELETE FROM audit.checkpoints WHERE org_id = %(org)s AND tree_size = 100",
        {"org": seeded.org_a},
    )
    report = await _verify(db_session, seeded, seeded.org_a)
    assert _kinds(report) == [("checkpoint_chain", None)]


# --- bundles and the command line ---------------------------------------------------------------


async def _bundle(
    sessions: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
    seeded: Seeded,
    lo: int,
    hi: int,
) -> bytes:
    """Org A's events lo..hi-1 as a bundle against its latest checkpoint (120)."""
    reader = PgLogReader(sessions, page_size=16)
    records = [record async for _, record, _ in reader.rows(seeded.org_a, lo, hi)]
    hashes = await _leaf_hashes(connection, seeded.org_a)
    complement = [
        (a, b, merkle.root_from_leaves(hashes[a:b]))
        for a, b in merkle.complement_plan(lo, hi, SIZES_A[-1])
    ]
    out = io.BytesIO()
    checkpoints: list[Checkpoint] = await reader.checkpoints(seeded.org_a)
    write_bundle(out, seeded.org_a, lo, hi, records, checkpoints, seeded.jwks, complement)
    return out.getvalue()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios.audit", "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _edited(data: bytes, change: Callable[[list[bytes]], None]) -> bytes:
    lines = gzip.decompress(data).split(b"\n")[:-1]
    change(lines)
    return gzip.compress(b"".join(line + b"\n" for line in lines))


async def test_l2_cli_verifies_a_bundle_and_reports_tampering(
    seeded: Seeded,
    db_session: async_sessionmaker[AsyncSession],
    db_connection: AsyncConnection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m helios.audit verify --bundle` in a subprocess (exit 0, then 1 for a changed
    event); the other outcomes through the same entry point in-process."""
    data = await _bundle(db_session, db_connection, seeded, 40, 100)
    good = tmp_path / "good.jsonl.gz"
    good.write_bytes(data)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": seeded.jwks}))

    ok = _cli("--bundle", str(good), "--progress-every", "20")
    assert ok.returncode == 0, ok.stderr
    assert f"org {seeded.org_a}, indexes 40..99: OK (60 leaves" in ok.stdout
    assert "verify: 20 leaves (33.3%)" in ok.stderr
    assert "--jwks" in ok.stderr  # the bundle's own keys were used: say how to pin them

    def change_field(lines: list[bytes]) -> None:
        record = json.loads(lines[18])  # index 57
        record["action"] = "identity.user.delete"
        lines[18] = leaf_bytes(record)

    changed = tmp_path / "changed.jsonl.gz"
    changed.write_bytes(_edited(data, change_field))
    tampered = _cli("--bundle", str(changed), "--jwks", str(jwks))
    assert tampered.returncode == 1
    assert "TAMPERED, first bad index 40" in tampered.stdout
    assert "checkpoint_root at 40:" in tampered.stdout

    assert main(["audit", "verify", "--bundle", str(good), "--jwks", str(jwks)]) == 0
    assert capsys.readouterr().err == ""  # keys pinned, progress every 100,000 leaves

    def remove_line(lines: list[bytes]) -> None:
        del lines[18]

    removed = tmp_path / "removed.jsonl.gz"
    removed.write_bytes(_edited(data, remove_line))
    assert main(["audit", "verify", "--bundle", str(removed), "--jwks", str(jwks)]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED, first bad index 57" in out
    assert "  missing at 57: leaf 57 is missing" in out

    not_bundle = tmp_path / "notes.txt"
    not_bundle.write_text("hello\n")
    assert main(["audit", "verify", "--bundle", str(not_bundle)]) == 2
    assert "is not a helios audit bundle" in capsys.readouterr().err


def test_l1_cli_usage_errors_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HELIOS_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as no_source:
        main(["audit", "verify"])
    assert no_source.value.code == 2
    with pytest.raises(SystemExit) as both:
        main(["audit", "verify", "--org", "a", "--bundle", "b"])
    assert both.value.code == 2
    with pytest.raises(SystemExit) as other_area:
        main(["keys", "verify"])
    assert other_area.value.code == 2
    assert main(["audit", "verify", "--org", "a", "--jwks", str(tmp_path / "none.json")]) == 2
    assert "cannot read the JWKS file" in capsys.readouterr().err
    (tmp_path / "jwks.json").write_text("[]")
    assert main(["audit", "verify", "--org", "a", "--jwks", str(tmp_path / "jwks.json")]) == 2
    assert "needs HELIOS_DATABASE_URL" in capsys.readouterr().err
    assert main(["audit", "verify", "--bundle", str(tmp_path / "absent.gz")]) == 2
    assert "cannot read" in capsys.readouterr().err
    monkeypatch.setenv("HELIOS_SECRETS_DIR", str(tmp_path / "no-such-folder"))
    assert main(["audit", "verify", "--org", "a", "--jwks", str(tmp_path / "jwks.json")]) == 2
    assert "HELIOS_SECRETS_DIR: not a folder" in capsys.readouterr().err


def test_p4_cli_reads_the_database_url_from_the_secrets_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a pod the database URL is a file of HELIOS_SECRETS_DIR, not a variable: database
    mode finds it there (here a server that refuses the connection: exit 2, named)."""
    monkeypatch.delenv("HELIOS_DATABASE_URL", raising=False)
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "HELIOS_DATABASE_URL").write_text("postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("HELIOS_SECRETS_DIR", str(folder))
    (tmp_path / "jwks.json").write_text("[]")
    code = main(["audit", "verify", "--org", "a", "--jwks", str(tmp_path / "jwks.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert "database: connection failed" in err
