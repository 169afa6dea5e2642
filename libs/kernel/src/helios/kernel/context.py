"""The context of the current gRPC call: calling service, principal, client address and location,
trace id."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from helios.kernel.errors import UnauthenticatedError
from helios.proto.common.v1 import principal_pb2

__all__ = ["CallContext", "call_scope", "current_call"]


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling: `caller` is the mTLS identity (a service name), `principal` the actor.
    `ip`, `user_agent`, `city` and `country` (ISO 3166 alpha-2) are the edge's view of the client,
    '' when unknown; city and country only when a trusted proxy reported them (S4)."""

    caller: str
    principal: principal_pb2.Principal | None = None
    ip: str = ""
    user_agent: str = ""
    trace_id: str = ""
    city: str = ""
    country: str = ""

    def require_principal(self) -> principal_pb2.Principal:
        """The verified principal; raises UnauthenticatedError when the call carries none."""
        if self.principal is None:
            raise UnauthenticatedError("this call needs an authenticated principal")
        return self.principal


_EMPTY = CallContext(caller="")
_CURRENT: ContextVar[CallContext] = ContextVar("helios_call", default=_EMPTY)


def current_call() -> CallContext:
    """The context of the call being served (an empty one outside a call)."""
    return _CURRENT.get()


@contextmanager
def call_scope(ctx: CallContext) -> Iterator[CallContext]:
    """Make `ctx` the current call context for the duration of the block."""
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)
