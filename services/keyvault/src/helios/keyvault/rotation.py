"""The scheduled-rotation loop (E6): every replica checks; due keys are shared by row locks."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from helios.kernel.context import CallContext
from helios.keyvault.service import KeyvaultService

__all__ = ["ScheduledRotation"]

log = logging.getLogger(__name__)
_SYSTEM = CallContext(caller="keyvault")


class ScheduledRotation:
    """Calls `rotate_due` every `interval` seconds until stopped; failures are logged and
    retried at the next tick."""

    def __init__(self, service: KeyvaultService, interval: float = 60.0) -> None:
        self._service = service
        self._interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        """The background task (GrpcService.add_background)."""
        while not stop.is_set():
            try:
                rotated = await self._service.rotate_due(_SYSTEM)
                if rotated:
                    log.info("scheduled rotation", extra={"rotated_keys": rotated})
            except Exception as exc:
                log.warning("scheduled rotation failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
