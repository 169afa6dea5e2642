"""The periodic sealer: every interval, a signed checkpoint for every org whose log grew."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from helios.audit.sealing import CheckpointService
from helios.kernel.server import BackgroundTask

__all__ = ["SEAL_BATCH", "checkpoint_sealer"]

log = logging.getLogger(__name__)

SEAL_BATCH = 100
"""Orgs sealed per CheckpointService.seal_due call; a pass repeats until fewer are due."""


def checkpoint_sealer(checkpoints: CheckpointService, interval: float) -> BackgroundTask:
    """Every `interval` seconds (the first pass one interval after start) seal every org whose
    log grew, until the server stops; a failed pass is logged and tried again at the next
    tick."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stop.wait()
            try:
                while not stop.is_set():
                    if await checkpoints.seal_due(SEAL_BATCH) < SEAL_BATCH:
                        break
            except Exception as exc:
                log.warning("checkpoint sealing pass failed", extra={"error": repr(exc)})

    return run
