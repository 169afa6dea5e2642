"""The servicer context type every broker handler receives."""

from __future__ import annotations

from typing import Any

import grpc

__all__ = ["Context"]

Context = grpc.aio.ServicerContext[Any, Any]
