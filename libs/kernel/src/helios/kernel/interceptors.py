"""The server interceptor of every Helios service: caller, principal, trace, errors, access log."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import propagate, trace

from helios.kernel.client_geo import decode_city, valid_country
from helios.kernel.context import CallContext, call_scope
from helios.kernel.errors import DomainError, UnauthenticatedError
from helios.kernel.principal import METADATA_KEY, AssertionVerifier
from helios.kernel.status import DETAILS_KEY, rich_status, status_for
from helios.kernel.tls import caller_from_pem
from helios.proto.common.v1 import principal_pb2

__all__ = ["CITY_KEY", "CLIENT_IP_KEY", "COUNTRY_KEY", "USER_AGENT_KEY", "CallInterceptor"]

log = logging.getLogger("helios.rpc")
_tracer = trace.get_tracer("helios.kernel.rpc")

CLIENT_IP_KEY = "helios-client-ip"
USER_AGENT_KEY = "helios-user-agent"
CITY_KEY = "helios-client-city"  # percent-encoded UTF-8 (kernel/client_geo.py)
COUNTRY_KEY = "helios-client-country"


@functools.lru_cache(maxsize=256)
def _caller(pem: bytes) -> str:
    return caller_from_pem(pem)


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Builds the CallContext of each call and maps failures to status codes in one place.

    - caller: the `spiffe://helios/<name>` identity of the client certificate (mTLS is required by
      the server credentials, so every call has one);
    - principal: from the signed `helios-principal-bin` assertion only; a bad one is refused;
    - client ip / user agent / city / country headers are believed only from the edge (the
      gateway); city and country are validated (client_geo.py), an invalid one becomes '';
    - DomainError -> its status; NotImplementedError -> UNIMPLEMENTED; anything else -> INTERNAL
      with no detail (the traceback goes to the log, redacted).

    Unary-unary, unary-stream and stream-unary handlers are wrapped (the context is current while
    a client stream is consumed); no Helios RPC is bidirectional, and such a handler would pass
    through without a context.
    """

    def __init__(self, verifier: AssertionVerifier, edge_callers: frozenset[str]) -> None:
        self._verifier = verifier
        self._edge = edge_callers

    def _context(self, context: grpc.aio.ServicerContext[Any, Any]) -> CallContext:
        pems = list(context.auth_context().get("x509_pem_cert") or [])
        caller = _caller(pems[0]) if pems else ""
        metadata = dict(context.invocation_metadata() or ())
        principal: principal_pb2.Principal | None = None
        raw = metadata.get(METADATA_KEY)
        if raw:
            try:
                blob = raw if isinstance(raw, bytes) else raw.encode()
                assertion = principal_pb2.PrincipalAssertion.FromString(blob)
            except Exception as exc:
                raise UnauthenticatedError("malformed principal assertion") from exc
            principal = self._verifier.verify(assertion)
        edge = caller in self._edge
        span = trace.get_current_span().get_span_context()
        return CallContext(
            caller=caller,
            principal=principal,
            ip=str(metadata.get(CLIENT_IP_KEY, ""))[:64] if edge else "",
            user_agent=str(metadata.get(USER_AGENT_KEY, ""))[:512] if edge else "",
            trace_id=format(span.trace_id, "032x") if span.is_valid else "",
            city=decode_city(str(metadata.get(CITY_KEY, ""))) if edge else "",
            country=valid_country(str(metadata.get(COUNTRY_KEY, ""))) if edge else "",
        )

    async def _fail(
        self, context: grpc.aio.ServicerContext[Any, Any], method: str, exc: BaseException
    ) -> None:
        if isinstance(exc, DomainError):
            details = rich_status(exc).SerializeToString()
            context.set_trailing_metadata(((DETAILS_KEY, details),))
            await context.abort(status_for(exc), exc.message)
        if isinstance(exc, NotImplementedError):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet")
        log.error("unhandled error in %s", method, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        carrier = {
            k: v for k, v in handler_call_details.invocation_metadata or () if isinstance(v, str)
        }
        serving = functools.partial(self._serving, method, carrier)

        if handler.unary_unary is not None:
            inner_uu: Any = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                async with serving(context):
                    return await inner_uu(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

        if handler.unary_stream is not None:
            inner_us: Any = handler.unary_stream

            async def unary_stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                async with serving(context):
                    async for item in inner_us(request, context):
                        yield item

            return grpc.unary_stream_rpc_method_handler(
                unary_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

        if handler.stream_unary is not None:
            inner_su: Any = handler.stream_unary

            async def stream_unary(
                request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
            ) -> Any:
                async with serving(context):
                    return await inner_su(request_iterator, context)

            return grpc.stream_unary_rpc_method_handler(
                stream_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    @contextlib.asynccontextmanager
    async def _serving(
        self,
        method: str,
        carrier: dict[str, str],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[None]:
        """Around one call: a server span continuing the caller's trace, the call context, the
        error -> status mapping (the handler's own aborts pass through) and the access log."""
        started = time.perf_counter()
        with _tracer.start_as_current_span(
            method, context=propagate.extract(carrier), kind=trace.SpanKind.SERVER
        ):
            try:
                with call_scope(self._context(context)):
                    yield
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._fail(context, method, exc)
            finally:
                self._log(method, context, started)

    @staticmethod
    def _log(method: str, context: grpc.aio.ServicerContext[Any, Any], started: float) -> None:
        # code() is None when the handler returned normally.
        code_name: str = getattr(context.code(), "name", "OK")
        log.info(
            "rpc",
            extra={
                "method": method,
                "grpc_code": code_name,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
