"""Prometheus metrics of the ingest: consumer lag (messages and seconds), rows, dead letters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from nats.aio.msg import Msg
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

__all__ = ["IngestMetrics"]


class IngestMetrics:
    """Updated after every committed batch: `lag_messages` is what the stream still holds for
    the durable consumer after the batch, `lag_seconds` how long ago the batch's newest message
    entered the stream (0 when caught up with nothing pending)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.lag_messages = Gauge(
            "helios_audit_ingest_lag_messages",
            "Audit events waiting in the stream for this consumer",
            registry=registry,
        )
        self.lag_seconds = Gauge(
            "helios_audit_ingest_lag_seconds",
            "Age of the newest audit event of the last stored batch when it was stored",
            registry=registry,
        )
        self.stored = Counter(
            "helios_audit_events_stored",
            "Audit rows stored (duplicates excluded)",
            registry=registry,
        )
        self.dead_letters = Counter(
            "helios_audit_dead_letters",
            "Malformed audit messages kept in the dead-letter table",
            registry=registry,
        )

    def observe(
        self, messages: Sequence[Msg], stored: int, dead_lettered: int, now: dt.datetime
    ) -> None:
        """Record one committed batch."""
        self.stored.inc(stored)
        self.dead_letters.inc(dead_lettered)
        if not messages:
            return
        last = messages[-1].metadata
        self.lag_messages.set(last.num_pending or 0)
        if last.num_pending and last.timestamp is not None:
            self.lag_seconds.set(max((now - last.timestamp).total_seconds(), 0.0))
        else:
            self.lag_seconds.set(0.0)
