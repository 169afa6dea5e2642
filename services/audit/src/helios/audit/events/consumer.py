"""Durable JetStream consumer of `audit.>`: batches into the log, acks only after the commit."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from nats.aio.msg import Msg

from helios.audit.domain.events import Incoming
from helios.audit.events.ingest_metrics import IngestMetrics
from helios.audit.service import AuditService
from helios.kernel.bus import AUDIT_STREAM, AUDIT_SUBJECTS, Bus
from helios.kernel.bus_tracing import consuming
from helios.kernel.pull_consumer import consume

__all__ = ["DURABLE_NAME", "AuditConsumer"]

log = logging.getLogger(__name__)

DURABLE_NAME = "audit-writer"


class AuditConsumer:
    """Pulls batches from the AUDIT stream. A message is acknowledged only after its row (or its
    dead letter) is committed; if the process dies first, JetStream redelivers it and the insert
    is skipped as a duplicate. Replicas share the durable consumer."""

    def __init__(
        self,
        bus: Bus,
        service: AuditService,
        *,
        batch_size: int = 100,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self._bus = bus
        self._service = service
        self._batch_size = batch_size
        self._metrics = metrics

    async def _handle(self, messages: list[Msg]) -> None:
        dead_before = self._service.dead_lettered
        # Each message's CONSUMER span continues the trace of the request that made the event.
        with consuming(messages):
            stored = await self._service.ingest(
                [Incoming(m.subject, m.data, m.metadata.sequence.stream) for m in messages]
            )
        if self._metrics is not None:
            dead = self._service.dead_lettered - dead_before
            self._metrics.observe(messages, stored, dead, dt.datetime.now(dt.UTC))

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, reconnecting with backoff while NATS is away."""
        await consume(
            self._bus,
            subject=AUDIT_SUBJECTS,
            durable=DURABLE_NAME,
            stream=AUDIT_STREAM,
            handle=self._handle,
            stop=stop,
            log=log,
            batch_size=self._batch_size,
        )
