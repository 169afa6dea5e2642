"""Audit figures: ingest through outbox -> NATS -> audit_log with the Merkle append vs a raw
batched INSERT of the same rows; verifying a log of 1,000,000 events vs hashing its leaves;
inclusion and consistency proofs as the log grows from 1,000 to 1,000,000 leaves."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import gzip
import itertools
import random
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from psycopg.types.json import Jsonb
from sqlalchemy import MetaData, Table

from authz_figures import interleaved
from harness import Call, Figure, percentile
from helios.audit.domain import merkle
from helios.audit.domain.bundle import header_line, trailer_lines, verify_bundle
from helios.audit.domain.checkpoint import Checkpoint, checkpoint_note
from helios.audit.domain.leaf import leaf_bytes
from helios.audit.domain.verification import LogVerifier, Report, keys_from_jwks
from helios.audit.store.reader import PgLogReader
from helios.audit.store.rows import leaf_record
from helios.devstack.stack import Stack
from helios.kernel.bus import Bus, audit_subject
from helios.kernel.clients import secure_channel
from helios.kernel.db import create_engine, session_factory
from helios.kernel.outbox import OutboxRelay, outbox_table
from helios.proto.audit.v1 import audit_pb2, audit_pb2_grpc, events_pb2
from helios.proto.common.v1 import principal_pb2

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from helios.proto.audit.v1.audit_pb2_grpc import AuditServiceAsyncStub

__all__ = ["audit_figures"]

TIMEOUT = 60.0
SERVICE = "identity"  # the Helios service identity the bench asks audit for proofs as
SCHEMA = "bench_audit"  # the bench's outbox and the baseline's copy of audit_log; dropped after
PRODUCER = "bench"

# (a) the ingest: events spread round-robin over orgs, as the audit consumer receives them.
INGEST_EVENTS = 20_000
INGEST_ORGS = 8
INGEST_BATCH = 100  # the audit consumer's fetch size: the baseline commits as many per INSERT
INGEST_WAIT = 300.0
POLL_SECONDS = 0.05
INGEST_NAME = "audit ingest events/s (outbox -> NATS -> audit_log + Merkle)"
INSERT_BASELINE = "raw batched INSERT events/s"

# (b) verifying one org's log of a million leaves, with signed checkpoints along it.
VERIFY_LEAVES = 1_000_000
CHECKPOINTS = 4
CHUNK = 10_000  # leaves generated (untimed) and then timed at a time
HASH_BASELINE = "merkle.leaf_hash 1M leaves"
VERIFIER_NAME = f"LogVerifier 1M leaves ({CHECKPOINTS} signed checkpoints)"
BUNDLE_LEAVES = VERIFY_LEAVES // 4  # the bundle: the newest quarter of the log
BUNDLE_NAME = "verify_bundle 250k events of the 1M log (gzip)"

# (c) proofs: orgs whose logs hold this many leaves (merkle_nodes loaded directly).
PROOF_SIZES = (1_000, 100_000, VERIFY_LEAVES)
PROVEN = 8  # events per org whose inclusion is asked in turn (their audit_log rows stored)
CONSISTENCY_FIRSTS = 4  # first sizes per org whose consistency with the full log is asked in turn

# --- synthetic events ---------------------------------------------------------------------------

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
EVENT_MS = 37  # occurred_at advances this much per event (1M events: about 10 hours)
KINDS = (
    ("document", "documents.document.update", True),
    ("document", "documents.document.read", False),
    ("session", "identity.user.signIn", False),
    ("invoice", "billing.invoice.approve", True),
    ("role", "authz.role.assign", True),
)


@dataclass(frozen=True, slots=True)
class User:
    actor_id: str
    session_id: str
    ip: str


USERS = tuple(
    User(
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"helios-bench/user/{n}")),
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"helios-bench/session/{n}")),
        f"10.20.{n // 256}.{n % 256}",
    )
    for n in range(61)
)


def second(seconds: int) -> str:
    """2025-01-01 plus `seconds`, to the second, as leaf.timestamp() begins it."""
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"2025-01-{days + 1:02}T{hours:02}:{minutes:02}:{seconds:02}."


def leaf_records(org_id: str, start: int, count: int) -> list[dict[str, Any]]:
    """Leaf records (store/rows.leaf_record's shape) of events start..start+count-1 of the org's
    log; the same arguments give the same records."""
    rng = random.Random(f"{org_id}/{start}/{count}")  # noqa: S311 - synthetic data, no secret
    noise = rng.randbytes(32 * count).hex()
    seconds: dict[int, str] = {}
    records = []
    for offset in range(count):
        index = start + offset
        h = noise[64 * offset : 64 * offset + 64]
        user = USERS[index % len(USERS)]
        resource_type, action, changes = KINDS[index % len(KINDS)]
        times = []
        for ms in (index * EVENT_MS, index * EVENT_MS + 40):
            whole, millis = divmod(ms, 1000)
            prefix = seconds.get(whole) or seconds.setdefault(whole, second(whole))
            times.append(f"{prefix}{millis:03}000Z")
        records.append(
            {
                "index": index,
                "event_id": f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}",
                "org_id": org_id,
                "occurred_at": times[0],
                "recorded_at": times[1],
                "actor_type": "user",
                "actor_id": user.actor_id,
                "session_id": user.session_id,
                "impersonator_id": "",
                "action": action,
                "resource_type": resource_type,
                "resource_id": f"{resource_type}-{index * 7919 % 100_003}",
                "input_hash": h,
                "output_hash": h[::-1] if changes else "",
                "ip": user.ip,
                "user_agent": USER_AGENT,
                "diff": {"title": {"old": f"v{index}", "new": f"v{index + 1}"}} if changes else {},
                "decision_id": f"{h[32:40]}-{h[40:44]}-4{h[45:48]}-b{h[49:52]}-{h[52:64]}",
                "trace_id": h[32:],
                "producer": PRODUCER,
                "outcome": 1,
            }
        )
    return records


def audit_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The audit_log row a leaf record comes from (without seq, stream_seq, org_seq and leaf
    hash): leaf_record(audit_row(r), r["index"]) == r."""
    row = {k: v for k, v in record.items() if k != "index"}
    row["occurred_at"] = dt.datetime.fromisoformat(record["occurred_at"])
    row["recorded_at"] = dt.datetime.fromisoformat(record["recorded_at"])
    return row


def audit_event(record: Mapping[str, Any]) -> events_pb2.AuditEvent:
    """The AuditEvent a producer would publish for the record (audit sets recorded_at)."""
    event = events_pb2.AuditEvent(
        event_id=record["event_id"],
        org_id=record["org_id"],
        actor_type=principal_pb2.ACTOR_TYPE_USER,
        actor_id=record["actor_id"],
        session_id=record["session_id"],
        action=record["action"],
        resource_type=record["resource_type"],
        resource_id=record["resource_id"],
        input_hash=record["input_hash"],
        output_hash=record["output_hash"],
        ip=record["ip"],
        user_agent=record["user_agent"],
        decision_id=record["decision_id"],
        trace_id=record["trace_id"],
        producer=record["producer"],
        outcome=events_pb2.AUDIT_OUTCOME_SUCCESS,
    )
    event.occurred_at.FromDatetime(dt.datetime.fromisoformat(record["occurred_at"]))
    event.diff.update(record["diff"])
    return event


def throughput(name: str, count: int, chunks: list[tuple[int, float]], *baselines: str) -> Figure:
    """A Figure of `count` items timed in `chunks` of (items, seconds): calls/s is items/s, p50
    and p99 are of the time per item over the chunks (a single chunk: the mean)."""
    per_item = sorted(seconds * 1000 / items for items, seconds in chunks)
    seconds = sum(s for _, s in chunks)
    p50, p99 = percentile(per_item, 0.50), percentile(per_item, 0.99)
    return Figure(name, count, 1, seconds, p50, p99, baselines or (name,))


# --- (a) ingest ---------------------------------------------------------------------------------


async def create_scratch(conn: psycopg.AsyncConnection[Any], engine: AsyncEngine) -> Table:
    """The bench's schema in the stack's database: an outbox (outbox_table, as every service
    has) for the relay, and the baseline's copy of audit.audit_log (columns, defaults,
    constraints, indexes). Returns the outbox."""
    outbox = outbox_table(MetaData(schema=SCHEMA))
    await conn.execute(f"CREATE SCHEMA {SCHEMA}")
    await conn.execute(f"CREATE TABLE {SCHEMA}.audit_log_raw (LIKE audit.audit_log INCLUDING ALL)")
    async with engine.begin() as setup:
        await setup.run_sync(outbox.metadata.create_all)
    return outbox


async def enqueue_outbox(
    conn: psycopg.AsyncConnection[Any], events: list[events_pb2.AuditEvent]
) -> None:
    """The events as a producer's outbox rows (enqueue()'s columns), in order."""
    start = dt.datetime.now(dt.UTC)
    copy_sql = f"COPY {SCHEMA}.outbox (id, subject, payload, headers, created_at) FROM STDIN"
    async with conn.transaction(), conn.cursor().copy(copy_sql) as copy:
        for n, event in enumerate(events):
            await copy.write_row(
                (
                    uuid.UUID(event.event_id),
                    audit_subject(PRODUCER, event.action),
                    event.SerializeToString(deterministic=True),
                    "{}",
                    start + dt.timedelta(microseconds=n),
                )
            )


async def stored_count(conn: psycopg.AsyncConnection[Any], orgs: list[str]) -> int:
    cursor = await conn.execute(
        "SELECT count(*) FROM audit.audit_log WHERE org_id = ANY(%s)", (orgs,)
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def pending_count(conn: psycopg.AsyncConnection[Any]) -> int:
    """Outbox rows the relay has not published yet (the outbox's partial index)."""
    query = f"SELECT count(*) FROM {SCHEMA}.outbox WHERE published_at IS NULL"  # noqa: S608
    cursor = await conn.execute(query)
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def relay_until_stored(
    stack: Stack,
    sessions: async_sessionmaker[AsyncSession],
    outbox: Table,
    conn: psycopg.AsyncConnection[Any],
    orgs: list[str],
    expected: int,
) -> tuple[float, float]:
    """Run an OutboxRelay over the bench's outbox against the stack's NATS until audit has
    stored `expected` rows of `orgs`: the seconds from the relay's start until it had
    published them all, and until audit had stored them all (each seen by a poll)."""
    bus = Bus(stack.nats_url, name="helios-bench-audit")
    relay = OutboxRelay(sessions, outbox, bus)
    await bus.jetstream()  # connected (and the AUDIT stream in place) before the clock starts
    stop = asyncio.Event()
    started = time.perf_counter()
    published: float | None = None
    task = asyncio.create_task(relay.run(stop))
    try:
        while True:
            if published is None and not await pending_count(conn):
                published = time.perf_counter() - started
            stored = await stored_count(conn, orgs)
            took = time.perf_counter() - started
            if stored >= expected:
                return published or took, took
            if took > INGEST_WAIT:
                raise RuntimeError(f"audit stored {stored} of {expected} events in {took:.0f} s")
            await asyncio.sleep(POLL_SECONDS)
    finally:
        stop.set()
        relay.notify()
        await task
        await bus.close()


async def check_ingested(
    sessions: async_sessionmaker[AsyncSession], conn: psycopg.AsyncConnection[Any], orgs: list[str]
) -> int:
    """Every org's stored rows re-hash to their stored leaves (LogVerifier over the stored
    log, as `helios audit verify --org` reads it) and its stored Merkle nodes give the root
    of those leaves; returns the rows checked."""
    reader = PgLogReader(sessions)
    checked = 0
    for org in orgs:
        size = await reader.size(org) or 0
        verifier = LogVerifier(org, [], {}, expected_size=size)
        root = merkle.StreamingRoot()
        async for index, record, stored in reader.rows(org):
            verifier.feed(index, record, stored)
            root.add(stored)
        report = verifier.finish()
        cursor = await conn.execute(
            "SELECT level, idx, hash FROM audit.merkle_nodes WHERE org_id = %s", (org,)
        )
        nodes = {(int(level), int(idx)): bytes(value) async for level, idx, value in cursor}
        if not report.ok or root.size != size or merkle.range_hash(0, size, nodes) != root.root():
            raise RuntimeError(f"org {org}: the ingested log does not verify: {report}")
        checked += size
    return checked


def insert_sql(table: str, columns: list[str]) -> str:
    """INSERT of one row of `columns` (the bench's own names) into `table`, named parameters."""
    values = ", ".join(f"%({column})s" for column in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"  # noqa: S608


async def raw_insert(
    conn: psycopg.AsyncConnection[Any], records: list[dict[str, Any]]
) -> list[tuple[int, float]]:
    """The same rows, INSERTed with executemany into the copy of audit_log, INGEST_BATCH rows
    per transaction (the consumer's batch), with no Merkle work: each org's next org_seq is
    counted and the leaf hash is a constant. (rows, seconds) of each batch."""
    now = dt.datetime.now(dt.UTC)
    sizes: dict[str, int] = {}
    rows = []
    for seq, record in enumerate(records, start=1):
        row = audit_row(record)
        org = row["org_id"]
        row.update(
            recorded_at=now,
            diff=Jsonb(row["diff"]),
            stream_seq=seq,
            org_seq=sizes.get(org, 0),
            leaf_hash=bytes(merkle.HASH_SIZE),
        )
        sizes[org] = sizes.get(org, 0) + 1
        rows.append(row)
    columns = list(rows[0])
    statement = insert_sql(f"{SCHEMA}.audit_log_raw", columns)
    batches = []
    async with conn.cursor() as cursor:
        for lo in range(0, len(rows), INGEST_BATCH):
            batch = rows[lo : lo + INGEST_BATCH]
            started = time.perf_counter()
            async with conn.transaction():
                await cursor.executemany(statement, batch)
            batches.append((len(batch), time.perf_counter() - started))
    return batches


async def ingest_figures(stack: Stack) -> list[Figure]:
    """(a) INGEST_EVENTS events of INGEST_ORGS orgs from an outbox (the bench's schema) through
    a real OutboxRelay, the stack's NATS (AUDIT stream) and the running audit service (pull
    consumer, PostgresAuditLog.append: each org's log size locked, leaf hashes, Merkle nodes),
    timed from the relay's start until audit.audit_log holds them all (polled every 50 ms); vs
    the same rows INSERTed in batches into a plain copy of audit_log. One timed run each: p50
    and p99 are the mean time per event."""
    orgs = [str(uuid.uuid4()) for _ in range(INGEST_ORGS)]
    per_org = [leaf_records(org, 0, INGEST_EVENTS // INGEST_ORGS) for org in orgs]
    records = [record for group in zip(*per_org, strict=True) for record in group]
    events = [audit_event(record) for record in records]
    engine = create_engine(stack.database_url)
    sessions = session_factory(engine)
    url = stack.database_url
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        try:
            outbox = await create_scratch(conn, engine)
            started = time.perf_counter()
            await enqueue_outbox(conn, events)
            enqueued = time.perf_counter() - started
            published, took = await relay_until_stored(
                stack, sessions, outbox, conn, orgs, len(events)
            )
            checked = await check_ingested(sessions, conn, orgs)
            batches = await raw_insert(conn, records)
        finally:
            await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            await engine.dispose()
    figures = [
        throughput(INSERT_BASELINE, len(records), [(len(records), sum(s for _, s in batches))]),
        throughput(INGEST_NAME, len(events), [(len(events), took)], INSERT_BASELINE),
    ]
    rates = [figure.calls / figure.seconds for figure in figures]
    print(
        f"audit: {len(events):,} events of {INGEST_ORGS} orgs (outbox COPY in {enqueued:.1f} s, "
        f"untimed): the relay published them all after {published:.1f} s; "
        f"ingested at {rates[1]:,.0f} events/s end to end vs {rates[0]:,.0f} rows/s "
        f"raw INSERT ({INGEST_BATCH} rows a transaction), {rates[0] / rates[1]:.1f}x; "
        f"all {checked:,} stored rows re-hash to their stored leaves, whose roots the stored "
        "Merkle nodes give",
        flush=True,
    )
    return figures


# --- (b) verifying a million leaves ---------------------------------------------------------------


@dataclass
class GeneratedLog:
    """One org's log of generated leaf records: every leaf hash, the records kept by index."""

    org_id: str
    hashes: list[bytes]
    kept: dict[int, dict[str, Any]]


@dataclass
class Signer:
    """A local Ed25519 checkpoint key, published as keyvault publishes its JWKs."""

    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    kid: str = field(default_factory=lambda: f"{uuid.uuid4()}:1")

    def jwks(self) -> list[dict[str, str]]:
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": x, "kid": self.kid}]

    def checkpoints(self, org_id: str, roots: list[tuple[int, bytes]]) -> list[Checkpoint]:
        """Signed checkpoints of (size, root) in order, each chained to the one before."""
        signed = []
        previous, previous_root = 0, merkle.EMPTY_ROOT
        for size, root in roots:
            sealed_at = dt.datetime.now(dt.UTC)
            note = checkpoint_note(org_id, size, root, sealed_at, previous, previous_root)
            signed.append(
                Checkpoint(
                    org_id,
                    size,
                    root,
                    sealed_at,
                    previous,
                    previous_root,
                    self.kid,
                    self.key.sign(note),
                )
            )
            previous, previous_root = size, root
        return signed


def chunks(org_id: str, size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, size, CHUNK):
        yield leaf_records(org_id, start, min(CHUNK, size - start))


def generate_log(
    org_id: str, size: int, keep: set[int], bundle: Bundle | None = None
) -> tuple[GeneratedLog, list[tuple[int, float]], list[tuple[int, bytes]]]:
    """The org's log of `size` generated leaves: (the log, (leaves, seconds) of leaf_hash over
    each chunk, (size, root) at CHECKPOINTS evenly spaced sizes). With `bundle`, also writes
    the event lines of its slice there."""
    sizes = {size * (n + 1) // CHECKPOINTS for n in range(CHECKPOINTS)}
    log = GeneratedLog(org_id, [], {})
    timed: list[tuple[int, float]] = []
    roots: list[tuple[int, bytes]] = []
    root = merkle.StreamingRoot()
    for records in chunks(org_id, size):
        lines = [leaf_bytes(record) for record in records]
        started = time.perf_counter()
        leaves = [merkle.leaf_hash(line) for line in lines]
        timed.append((len(leaves), time.perf_counter() - started))
        if bundle is not None:
            bundle.events(records[0]["index"], lines)
        for record, leaf in zip(records, leaves, strict=True):
            root.add(leaf)
            if root.size in sizes:
                roots.append((root.size, root.root()))
            if record["index"] in keep:
                log.kept[record["index"]] = record
        log.hashes.extend(leaves)
    return log, timed, roots


class Bundle:
    """An export bundle of leaves lo..size-1 of a log of `size` leaves (the newest quarter, as
    an export of a recent time range is), built from bundle.py's lines as a streamed export is
    (gzip level 1, to keep the untimed writing short: reading costs about the same)."""

    def __init__(self, file: IO[bytes], org_id: str, lo: int, size: int) -> None:
        self.lo, self.size = lo, size
        self._zipped = gzip.GzipFile(fileobj=file, mode="wb", mtime=0, compresslevel=1)
        self._zipped.write(header_line(org_id, lo, size, size))

    def events(self, first: int, lines: list[bytes]) -> None:
        """Event lines of leaves first, first + 1, ...; those before `lo` are left out."""
        skip = max(0, self.lo - first)
        if skip < len(lines):
            self._zipped.write(b"\n".join(lines[skip:]) + b"\n")

    def finish(
        self, checkpoints: list[Checkpoint], jwks: list[dict[str, str]], hashes: list[bytes]
    ) -> None:
        """The trailers (the complement's hashes from the leaf hashes of the whole log)."""
        plan = merkle.complement_plan(self.lo, self.size, self.size)
        complement = [(a, b, merkle.root_from_leaves(hashes[a:b])) for a, b in plan]
        self._zipped.writelines(trailer_lines(checkpoints, jwks, complement))
        self._zipped.close()


def checked(report: Report, leaves: int, checkpoints: int, what: str) -> None:
    if not report.ok or report.leaves_read != leaves or report.checkpoints_verified != checkpoints:
        raise RuntimeError(f"{what}: {report}")


def verify_figures() -> tuple[list[Figure], GeneratedLog]:
    """(b) One org's log of VERIFY_LEAVES generated leaf records (audit rows of 61 users, about
    835 bytes of canonical JSON each) with CHECKPOINTS checkpoints signed by a local Ed25519
    key. Timed: merkle.leaf_hash over the leaves' canonical bytes (the baseline); LogVerifier
    fed every record with its stored leaf hash (what `helios audit verify --org` does per row,
    without reading PostgreSQL); verify_bundle over an export bundle of the newest quarter of
    the log, anchored on the 1M checkpoint through its complement hashes, keys pinned (what
    `verify --bundle --jwks` does). Records are generated untimed in chunks of CHUNK, which
    also give p50 and p99 per leaf."""
    org = str(uuid.uuid4())
    signer = Signer()
    keys = keys_from_jwks(signer.jwks())
    lo = VERIFY_LEAVES - BUNDLE_LEAVES
    with tempfile.TemporaryFile() as file:
        started = time.perf_counter()
        bundle = Bundle(file, org, lo, VERIFY_LEAVES)
        log, hashed, roots = generate_log(org, VERIFY_LEAVES, proven_indexes(VERIFY_LEAVES), bundle)
        checkpoints = signer.checkpoints(org, roots)
        bundle.finish(checkpoints, signer.jwks(), log.hashes)
        generated = time.perf_counter() - started
        written = file.tell()

        verifier = LogVerifier(org, checkpoints, keys, expected_size=VERIFY_LEAVES)
        fed: list[tuple[int, float]] = []
        for records in chunks(org, VERIFY_LEAVES):
            hashes = log.hashes[records[0]["index"] : records[-1]["index"] + 1]
            began = time.perf_counter()
            for record, stored in zip(records, hashes, strict=True):
                verifier.feed(record["index"], record, stored)
            fed.append((len(records), time.perf_counter() - began))
        began = time.perf_counter()
        checked(verifier.finish(), VERIFY_LEAVES, CHECKPOINTS, "LogVerifier")
        fed[-1] = (fed[-1][0], fed[-1][1] + time.perf_counter() - began)

        file.seek(0)
        marks: list[float] = []

        def progress(done: int, _total: int) -> None:
            if done % CHUNK == 0:
                marks.append(time.perf_counter())

        began = time.perf_counter()
        report = verify_bundle(file, keys, progress=progress)
        ended = time.perf_counter()
        checked(report, BUNDLE_LEAVES, CHECKPOINTS, "verify_bundle")
    edges = [began, *marks[:-1], ended]  # the last chunk also reads the trailers and finishes
    bundled = [(CHUNK, b - a) for a, b in itertools.pairwise(edges)]
    figures = [
        throughput(HASH_BASELINE, VERIFY_LEAVES, hashed),
        throughput(VERIFIER_NAME, VERIFY_LEAVES, fed, HASH_BASELINE),
        throughput(BUNDLE_NAME, BUNDLE_LEAVES, bundled, HASH_BASELINE),
    ]
    rates = "; ".join(
        f"{f.name}: {f.seconds:.1f} s, {f.calls / f.seconds:,.0f} leaves/s" for f in figures
    )
    print(
        f"audit: {VERIFY_LEAVES:,} leaves and a {written / 2**20:,.0f} MiB bundle of "
        f"{BUNDLE_LEAVES:,} generated in {generated:.1f} s (untimed); {rates}; both verifiers "
        f"OK with {CHECKPOINTS} checkpoints",
        flush=True,
    )
    return figures, log


# --- (c) proofs as the log grows ------------------------------------------------------------------


def proven_indexes(size: int) -> set[int]:
    """PROVEN leaf indexes spread over a log of `size` leaves, first and last included."""
    return {n * (size - 1) // (PROVEN - 1) for n in range(PROVEN)}


@dataclass(frozen=True)
class LoadedLog:
    """An org's log as loaded into audit's tables, and what its proofs are checked against."""

    org_id: str
    size: int
    root: bytes
    events: list[tuple[str, int, bytes]]  # (event id, leaf index, leaf hash) of the stored rows
    firsts: list[tuple[int, bytes]]  # (size, root) of earlier trees


async def load_log(conn: psycopg.AsyncConnection[Any], log: GeneratedLog) -> LoadedLog:
    """The org's log in audit's tables as PostgresAuditLog.append would have left it, without
    the audit_log rows proofs never read: its size in org_logs, every perfect node in
    merkle_nodes (merkle.appended_nodes over chunks of leaves, as appends compute them, then
    COPY), and the audit_log rows of the PROVEN events (GetInclusionProof looks their index
    up)."""
    org, size = log.org_id, len(log.hashes)
    firsts = [size * n // (CONSISTENCY_FIRSTS + 1) + n for n in range(1, CONSISTENCY_FIRSTS + 1)]
    wanted = {ref for first in [*firsts, size] for ref in merkle.border(first)}
    saved: dict[merkle.NodeRef, bytes] = {}
    copy_sql = "COPY audit.merkle_nodes (org_id, level, idx, hash) FROM STDIN (FORMAT BINARY)"
    async with conn.transaction():
        async with conn.cursor().copy(copy_sql) as copy:
            copy.set_types(["varchar", "int2", "int8", "bytea"])
            border: dict[merkle.NodeRef, bytes] = {}
            for lo in range(0, size, CHUNK):
                nodes = merkle.appended_nodes(lo, log.hashes[lo : lo + CHUNK], border)
                for (level, idx), value in nodes:
                    await copy.write_row((org, level, idx, value))
                known = {**border, **dict(nodes)}
                saved.update((ref, known[ref]) for ref in wanted if ref in known)
                border = {ref: known[ref] for ref in merkle.border(min(lo + CHUNK, size))}
        await conn.execute("INSERT INTO audit.org_logs (org_id, size) VALUES (%s, %s)", (org, size))
        rows = []
        for index, record in sorted(log.kept.items()):
            row = audit_row(record)
            if leaf_record(row, index) != record:
                raise RuntimeError(f"leaf {index}: its audit_log row maps to another record")
            row.update(
                diff=Jsonb(row["diff"]), stream_seq=0, org_seq=index, leaf_hash=log.hashes[index]
            )
            rows.append(row)
        columns = list(rows[0])
        async with conn.cursor() as cursor:
            await cursor.executemany(insert_sql("audit.audit_log", columns), rows)
    return LoadedLog(
        org_id=org,
        size=size,
        root=merkle.range_hash(0, size, saved),
        events=[(r["event_id"], r["org_seq"], r["leaf_hash"]) for r in rows],
        firsts=[(first, merkle.range_hash(0, first, saved)) for first in firsts],
    )


def inclusion_call(stub: AuditServiceAsyncStub, log: LoadedLog) -> Call:
    """GetInclusionProof of the log's stored events in turn, in the latest checkpoint (the
    usual request: tree_size 0); every proof is verified against the sealed root."""
    requests = [
        (audit_pb2.GetInclusionProofRequest(org_id=log.org_id, event_id=event_id), index, leaf)
        for event_id, index, leaf in log.events
    ]
    turn = [0]

    async def call() -> None:
        turn[0] += 1
        request, index, leaf = requests[turn[0] % len(requests)]
        reply = await stub.GetInclusionProof(request, timeout=TIMEOUT)
        path = list(reply.audit_path)
        if reply.leaf_index != index or reply.tree_size != log.size:
            raise RuntimeError(f"proof of leaf {reply.leaf_index} of {reply.tree_size}")
        if not merkle.verify_inclusion(leaf, index, log.size, path, log.root):
            raise RuntimeError(f"the inclusion proof of leaf {index} does not verify")

    return call


def consistency_call(stub: AuditServiceAsyncStub, log: LoadedLog) -> Call:
    """GetConsistencyProof from each earlier size in turn to the whole log; every proof is
    verified against both roots."""
    requests = [
        (
            audit_pb2.GetConsistencyProofRequest(
                org_id=log.org_id, first_size=first, second_size=log.size
            ),
            first,
            root,
        )
        for first, root in log.firsts
    ]
    turn = [0]

    async def call() -> None:
        turn[0] += 1
        request, first, first_root = requests[turn[0] % len(requests)]
        reply = await stub.GetConsistencyProof(request, timeout=TIMEOUT)
        proof = list(reply.proof)
        if not merkle.verify_consistency(first, log.size, first_root, log.root, proof):
            raise RuntimeError(f"the consistency proof {first} -> {log.size} does not verify")

    return call


async def proof_figures(
    stack: Stack, largest: GeneratedLog, calls: int, concurrency: int
) -> list[Figure]:
    """(c) GetInclusionProof and GetConsistencyProof over gRPC (as the `identity` service),
    each against orgs whose logs hold PROOF_SIZES leaves, the smallest the baseline: both read
    O(log n) stored nodes, so they should stay nearly flat. The largest log is (b)'s; every log
    is sealed through SealCheckpoint (keyvault signs) and the sealed root must be the one
    computed here. Measured interleaved, like authz's (c)."""
    started = time.perf_counter()
    logs = [
        generate_log(str(uuid.uuid4()), size, proven_indexes(size))[0]
        for size in PROOF_SIZES
        if size != len(largest.hashes)
    ]
    logs.append(largest)
    async with await psycopg.AsyncConnection.connect(stack.database_url, autocommit=True) as conn:
        loaded = [await load_log(conn, log) for log in logs]
        # What autovacuum would do after the load, done now so that it does not run during
        # the figures.
        await conn.execute("VACUUM (ANALYZE) audit.merkle_nodes, audit.audit_log, audit.org_logs")
    nodes = sum(2 * log.size - 1 for log in loaded)
    target = f"localhost:{stack.ports['audit']}"
    async with secure_channel(target, stack.certs(SERVICE)) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        for log in loaded:
            sealed = await stub.SealCheckpoint(
                audit_pb2.SealCheckpointRequest(org_id=log.org_id), timeout=TIMEOUT
            )
            if (sealed.checkpoint.tree_size, sealed.checkpoint.root_hash) != (log.size, log.root):
                raise RuntimeError(f"audit sealed {sealed.checkpoint} for a log of {log.size}")
        print(
            f"audit: logs of {', '.join(f'{log.size:,}' for log in loaded)} leaves "
            f"({nodes:,} merkle_nodes rows) loaded and sealed in "
            f"{time.perf_counter() - started:.1f} s; inclusion paths of "
            f"{', '.join(str(len(merkle.inclusion_plan(0, log.size))) for log in loaded)} "
            "hashes; every proof is verified against the sealed root",
            flush=True,
        )
        inclusion = [
            (f"grpc audit GetInclusionProof ({log.size:,} leaves)", inclusion_call(stub, log))
            for log in loaded
        ]
        consistency = [
            (f"grpc audit GetConsistencyProof ({log.size:,} leaves)", consistency_call(stub, log))
            for log in loaded
        ]
        # six figures: half the calls each, as many as authz's three of (c) make in all
        half = max(concurrency, calls // 2)
        return [
            *await interleaved(inclusion, half, concurrency),
            *await interleaved(consistency, half, concurrency),
        ]


async def audit_figures(stack: Stack, calls: int, concurrency: int) -> list[Figure]:
    """(a) ingest end to end vs a raw batched INSERT; (b) verifying 1M leaves vs hashing them;
    (c) inclusion and consistency proofs in logs of 1,000, 100,000 and 1,000,000 leaves."""
    figures = await ingest_figures(stack)
    verified, largest = verify_figures()
    return [*figures, *verified, *await proof_figures(stack, largest, calls, concurrency)]
