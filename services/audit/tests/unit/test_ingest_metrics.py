"""Ingest metrics (L1): consumer lag in messages and seconds, rows stored, dead letters."""

from __future__ import annotations

import datetime as dt

import pytest
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from helios.audit.events.ingest_metrics import IngestMetrics

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.UTC)


def _message(stream_seq: int, pending: int, age_seconds: float) -> Msg:
    """A message as JetStream delivers it: its ack subject carries sequence, time, pending."""
    stamp = int((NOW.timestamp() - age_seconds) * 1_000_000_000)
    reply = f"$JS.ACK.AUDIT.audit-writer.1.{stream_seq}.{stream_seq}.{stamp}.{pending}"
    return Msg(_client=None, subject="audit.x.y", reply=reply, data=b"")  # type: ignore[arg-type]


def _value(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value(name)
    assert value is not None, name
    return value


def test_l1_lag_and_counts_follow_each_committed_batch() -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    metrics.observe([_message(1, 5, 10.0), _message(2, 4, 7.5)], stored=2, dead_lettered=0, now=NOW)
    assert _value(registry, "helios_audit_ingest_lag_messages") == 4
    assert _value(registry, "helios_audit_ingest_lag_seconds") == pytest.approx(7.5, abs=0.01)
    metrics.observe([_message(3, 0, 1.0)], stored=0, dead_lettered=1, now=NOW)
    assert _value(registry, "helios_audit_ingest_lag_messages") == 0
    assert _value(registry, "helios_audit_ingest_lag_seconds") == 0
    assert _value(registry, "helios_audit_events_stored_total") == 2
    assert _value(registry, "helios_audit_dead_letters_total") == 1
