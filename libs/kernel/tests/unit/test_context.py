"""The current call context (P1: who is calling, carried through a gRPC call)."""

from __future__ import annotations

import pytest

from helios.kernel.context import CallContext, call_scope, current_call
from helios.kernel.errors import UnauthenticatedError
from helios.proto.common.v1 import principal_pb2

pytestmark = pytest.mark.unit


def test_p1_outside_a_call_the_context_is_empty() -> None:
    assert current_call() == CallContext(caller="")


def test_p1_call_scope_sets_and_restores_the_context() -> None:
    outer = CallContext(caller="gateway", ip="198.51.100.1")
    inner = CallContext(caller="ai-broker")
    with call_scope(outer):
        assert current_call() is outer
        with call_scope(inner):
            assert current_call() is inner
        assert current_call() is outer
    assert current_call().caller == ""


def test_p1_call_scope_restores_after_an_exception() -> None:
    with pytest.raises(RuntimeError), call_scope(CallContext(caller="gateway")):
        raise RuntimeError("boom")
    assert current_call().caller == ""


def test_p1_require_principal_refuses_anonymous_call() -> None:
    with pytest.raises(UnauthenticatedError):
        CallContext(caller="gateway").require_principal()


def test_p1_require_principal_returns_the_verified_principal() -> None:
    principal = principal_pb2.Principal(actor_id="user-1")
    assert CallContext(caller="gateway", principal=principal).require_principal() is principal
