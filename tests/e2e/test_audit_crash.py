"""Audit survives its own crash and a NATS outage mid-ingest: every audited state change made
through the gateway is in audit_log exactly once, and each org's Merkle log stays whole (L1, L3)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import nats
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from helios.audit.domain import merkle
from helios.audit.domain.leaf import leaf_bytes
from helios.audit.events.consumer import DURABLE_NAME
from helios.audit.store.rows import leaf_record
from helios.devstack.processes import ManagedProcess
from helios.devstack.stack import Stack
from helios.kernel.bus import AUDIT_STREAM

UA = "helios-e2e-audit-crash/1.0"
PASSWORD = "correct horse battery"
# The load comes from loopback addresses of its own, spread so that no per-IP rate-limit counter
# fills up and none is the one the other journeys (from 127.0.0.1) count against.
LOAD_ADDRESSES = [f"127.0.0.{host}" for host in range(3, 11)]
BACKLOG = 400
SETTLE_SECONDS = 120.0  # JetStream redelivers an unacknowledged batch after its 30 s ack wait


def _client(stack: Stack, number: int) -> httpx.Client:
    return httpx.Client(
        base_url=stack.gateway_url,
        transport=httpx.HTTPTransport(local_address=LOAD_ADDRESSES[number % len(LOAD_ADDRESSES)]),
        headers={"user-agent": UA},
        timeout=30,
    )


def _sign_ups(stack: Stack, count: int, workers: int = 12) -> list[str]:
    """`count` sign-ups (and a sign-in of the demo admin, an org's event, every tenth) through
    the gateway, `workers` at a time; returns the new user ids. Every request must succeed."""

    def one(number: int) -> str:
        with _client(stack, number) as client:
            if number % 10 == 0:
                creds = stack.demo_credentials
                body = {"email": creds["email"], "password": creds["password"]}
                signed_in = client.post("/api/auth/sign-in", json=body)
                assert signed_in.status_code == 200, signed_in.text
            email = f"crash-{uuid.uuid4().hex[:12]}@example.com"
            response = client.post("/api/auth/sign-up", json={"email": email, "password": PASSWORD})
            assert response.status_code == 201, response.text
            return str(response.json()["user"]["user_id"])

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(count)))


@contextmanager
def _background_sign_ups(stack: Stack) -> Iterator[list[str]]:
    """Sign-ups in a loop on another thread while the block runs; yields the growing id list.
    A failed request fails the test when the block ends."""
    ids: list[str] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            try:
                ids.extend(_sign_ups(stack, 8, workers=4))
            except BaseException as exc:  # reported on the test's thread
                errors.append(exc)
                return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield ids
    finally:
        done.set()
        thread.join(60)
    assert not thread.is_alive(), "the background sign-ups did not stop"
    assert errors == [], f"a sign-up failed: {errors[0]!r}"


def _kill_hard(process: ManagedProcess) -> None:
    """SIGKILL the process group (the service runs in its own session): no shutdown hook, no
    drain, no last acknowledgement; what a crash or an OOM kill looks like."""
    popen = process._process
    assert popen is not None
    assert popen.poll() is None, f"{process.name} was not running"
    os.killpg(popen.pid, signal.SIGKILL)
    popen.wait(10)


def _outbox_tables(db: psycopg.Connection) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_name = 'outbox' ORDER BY table_schema"
    ).fetchall()
    return [(str(schema), str(name)) for schema, name in rows]


def _audit_event_ids(db: psycopg.Connection) -> set[str]:
    """The id of every audit event any service has enqueued in its outbox."""
    ids: set[str] = set()
    for schema, name in _outbox_tables(db):
        query = sql.SQL("SELECT id::text FROM {} WHERE subject LIKE 'audit.%%'").format(
            sql.Identifier(schema, name)
        )
        ids |= {str(row[0]) for row in db.execute(query)}
    return ids


def _unpublished(db: psycopg.Connection) -> int:
    total = 0
    for schema, name in _outbox_tables(db):
        query = sql.SQL("SELECT count(*) FROM {} WHERE published_at IS NULL").format(
            sql.Identifier(schema, name)
        )
        row = db.execute(query).fetchone()
        total += int(row[0]) if row else 0
    return total


def _stored_count(db: psycopg.Connection, ids: set[str], after_seq: int = 0) -> int:
    """How many of `ids` are in audit_log (with a stream sequence above `after_seq`)."""
    row = db.execute(
        "SELECT count(*) FROM audit.audit_log WHERE event_id = ANY(%s::uuid[]) AND stream_seq > %s",
        (sorted(ids), after_seq),
    ).fetchone()
    return int(row[0]) if row else 0


def _wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _consumer_state(stack: Stack) -> dict[str, int]:
    async def fetch() -> dict[str, int]:
        client = await nats.connect(stack.nats_url)
        try:
            js = client.jetstream()
            info = await js.consumer_info(AUDIT_STREAM, DURABLE_NAME)
            stream = await js.stream_info(AUDIT_STREAM)
            return {
                "ack_floor": int(info.ack_floor.stream_seq or 0),
                "ack_pending": int(info.num_ack_pending or 0),
                "redelivered": int(info.num_redelivered or 0),
                "last_seq": int(stream.state.last_seq or 0),
            }
        finally:
            await client.close()

    return asyncio.run(fetch())


def _kill_after_commits(
    stack: Stack, db: psycopg.Connection, backlog: set[str], times: int
) -> tuple[list[int], dict[str, int]]:
    """Start audit into the backlog and SIGKILL it the moment its next batch is committed, while
    it still acknowledges that batch's messages one by one; `times` times (fewer if the backlog
    is stored before). Returns the rows stored at each kill and the consumer's state after."""
    audit = stack.processes["audit"]
    stored = [0]
    while len(stored) <= times and stored[-1] < len(backlog):
        audit.start()
        deadline = time.monotonic() + 60
        while _stored_count(db, backlog) <= stored[-1]:  # no sleep: kill within milliseconds
            assert time.monotonic() < deadline, f"audit stored nothing: {audit.log_tail()}"
        _kill_hard(audit)
        stored.append(_stored_count(db, backlog))
    return stored[1:], _consumer_state(stack)


def _drained(stack: Stack) -> bool:
    state = _consumer_state(stack)
    return state["ack_pending"] == 0 and state["ack_floor"] == state["last_seq"]


def _assert_every_event_stored_once(stack: Stack, db: psycopg.Connection, ids: set[str]) -> None:
    """Each id in `ids` is in audit_log exactly once, once the relays published everything and
    audit acknowledged every message, the redelivered ones included."""
    _wait_for(lambda: _unpublished(db) == 0, 30, "the outboxes to be relayed")
    _wait_for(lambda: _drained(stack), SETTLE_SECONDS, "audit to acknowledge every message")
    try:
        _wait_for(lambda: _stored_count(db, ids) == len(ids), 5, "the last rows")
    except AssertionError:
        missing = ids - {
            str(r[0])
            for r in db.execute(
                "SELECT event_id FROM audit.audit_log WHERE event_id = ANY(%s::uuid[])",
                (sorted(ids),),
            )
        }
        lost = f"{len(missing)} of {len(ids)} events lost: {sorted(missing)[:5]}"
        raise AssertionError(lost) from None
    counted = db.execute(
        "SELECT event_id::text, count(*) FROM audit.audit_log WHERE event_id = ANY(%s::uuid[]) "
        "GROUP BY event_id HAVING count(*) > 1",
        (sorted(ids),),
    ).fetchall()
    assert counted == [], f"stored more than once: {counted[:5]}"


def _assert_org_logs_whole(db: psycopg.Connection) -> None:
    """Every org's log: org_seq 0..n-1 without gap, org_logs.size = n, each stored leaf hash is
    the hash of its row, and the root from the rows equals the root from merkle_nodes."""
    orgs = db.execute(
        "SELECT l.org_id, count(a.seq), min(a.org_seq), max(a.org_seq), l.size "
        "FROM audit.org_logs l LEFT JOIN audit.audit_log a ON a.org_id = l.org_id "
        "GROUP BY l.org_id, l.size ORDER BY l.org_id"
    ).fetchall()
    assert orgs, "no org log at all"
    for org_id, count, low, high, size in orgs:
        assert (low, high, size) == (0, count - 1, count), f"org {org_id!r}: gap or wrong size"
        with db.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT * FROM audit.audit_log WHERE org_id = %s ORDER BY org_seq", (org_id,)
            )
            rows = cur.fetchall()
        leaves = [merkle.leaf_hash(leaf_bytes(leaf_record(row, row["org_seq"]))) for row in rows]
        wrong = [
            r["org_seq"] for r, leaf in zip(rows, leaves, strict=True) if r["leaf_hash"] != leaf
        ]
        assert wrong == [], f"org {org_id!r}: leaf hashes differ at {wrong[:5]}"
        nodes = {
            (int(level), int(idx)): bytes(value)
            for level, idx, value in db.execute(
                "SELECT level, idx, hash FROM audit.merkle_nodes WHERE org_id = %s", (org_id,)
            )
        }
        assert merkle.root_from_leaves(leaves) == merkle.range_hash(0, count, nodes), (
            f"org {org_id!r}: the root of the rows is not the root of merkle_nodes"
        )


def test_l1_audit_killed_mid_batch_loses_and_duplicates_nothing(
    stack: Stack, db: psycopg.Connection
) -> None:
    """L1/L3: audit is SIGKILLed while it works through a backlog of sign-ups (batches committed
    but not yet acknowledged are redelivered), and again while sign-ups keep coming; once it is
    back every event the services enqueued is in audit_log exactly once, no org's log has a
    gap, and the Merkle logs match their rows."""
    audit = stack.processes["audit"]
    before = _audit_event_ids(db)
    try:
        _kill_hard(audit)
        _sign_ups(stack, BACKLOG)
        _wait_for(lambda: _unpublished(db) == 0, 30, "the backlog to reach JetStream")
        backlog = _audit_event_ids(db) - before
        assert len(backlog) >= BACKLOG
        assert _stored_count(db, backlog) == 0, "audit stored events while it was dead"

        stored_at_kills, state = _kill_after_commits(stack, db, backlog, times=3)
        assert stored_at_kills[0] < len(backlog), "the first kill came after the backlog was stored"
        assert state["ack_pending"] > 0, f"no kill caught a batch in flight: {state}"
        unacknowledged = _stored_count(db, backlog, after_seq=state["ack_floor"])
        assert unacknowledged > 0, f"no kill came between a commit and its acks: {state}"

        # Kill and restart it while the sign-ups keep coming.
        with _background_sign_ups(stack) as live:
            stack.restart("audit")
            _wait_for(lambda: len(live) >= 16, 60, "sign-ups under load")
            _kill_hard(audit)
            _wait_for(lambda: len(live) >= 32, 60, "sign-ups while audit is dead")
            stack.restart("audit")
            _wait_for(lambda: len(live) >= 48, 60, "sign-ups after the restart")

        produced = _audit_event_ids(db) - before
        _assert_every_event_stored_once(stack, db, produced)
        _assert_org_logs_whole(db)
    finally:
        if not audit.running:  # the journeys after this one need audit
            stack.restart("audit")


def test_l1_nats_outage_while_producing_loses_nothing(stack: Stack, db: psycopg.Connection) -> None:
    """L1/L3: NATS goes away while sign-ups keep coming and audit is ingesting them; the
    sign-ups still succeed (their events wait in the outbox), and once NATS is back and audit
    acknowledged everything, every event is in audit_log exactly once and no org's log has a
    gap."""
    assert stack.nats is not None
    before = _audit_event_ids(db)
    with _background_sign_ups(stack) as live:
        _wait_for(lambda: len(live) >= 24, 60, "sign-ups before the outage")
        stack.nats.stop()
        try:
            during = len(live)
            _wait_for(lambda: len(live) >= during + 24, 60, "sign-ups during the outage")
            assert _unpublished(db) > 0, "nothing waited in an outbox during the outage"
        finally:
            stack.nats.start()
        after = len(live)
        _wait_for(lambda: len(live) >= after + 24, 60, "sign-ups after the outage")
    produced = _audit_event_ids(db) - before
    assert len(produced) >= 72
    _assert_every_event_stored_once(stack, db, produced)
    _assert_org_logs_whole(db)
