"""The authenticated caller of one HTTP request, as the handlers see it."""

from __future__ import annotations

from dataclasses import dataclass

from helios.proto.common.v1 import principal_pb2

__all__ = ["ANONYMOUS", "Caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    """`principal` and its signed `assertion` when authenticated; `via` says how."""

    principal: principal_pb2.Principal | None = None
    assertion: principal_pb2.PrincipalAssertion | None = None
    via: str = "anonymous"  # "session" | "api_key" | "ai_token" | "anonymous"

    @property
    def authenticated(self) -> bool:
        """Whether a principal was established."""
        return self.principal is not None


ANONYMOUS = Caller()
