"""Sign-up password policy over gRPC: the offline common-password list and the e-mail's local
part are refused with INVALID_ARGUMENT on `password`; a strong password is accepted (A1)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from helios.identity.store import tables
from helios.kernel.status import DETAILS_KEY
from helios.proto.identity.v1 import identity_pb2

TableRows = Callable[[Any], Awaitable[list[Any]]]


def _field_violation(error: grpc.aio.AioRpcError) -> str:
    for key, value in error.trailing_metadata() or ():
        if key == DETAILS_KEY:
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    field: str = bad.field_violations[0].field
                    return field
    raise AssertionError("no BadRequest detail")


@pytest.mark.parametrize(
    ("local", "password", "message"),
    [
        ("ada", "qwertyuiop", "too common"),
        ("ada", "BasketBall", "too common"),
        ("ada", "1234567890", "too common"),
        ("margaret.hamilton", "margaret.hamilton", "e-mail"),
        ("margaret.hamilton", "xx-Margaret.Hamilton-99", "e-mail"),
        ("grace+work", "grace-loves-compilers", "e-mail"),
    ],
)
async def test_a1_sign_up_refuses_common_and_email_derived_passwords(
    identity: Any, table_rows: TableRows, local: str, password: str, message: str
) -> None:
    """A1: refused with INVALID_ARGUMENT naming `password`; the message never repeats it and no
    account is created."""
    email = f"{local}@{uuid.uuid4().hex[:8]}.example.com"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await identity.stub().SignUp(
            identity_pb2.SignUpRequest(email=email, password=password, display_name="X"),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = refused.value.details() or ""
    assert message in details
    assert password not in details
    assert _field_violation(refused.value) == "password"
    assert await table_rows(tables.users) == []


async def test_a1_sign_up_accepts_a_strong_password(identity: Any) -> None:
    """A1: a long, unlisted password unrelated to the address is accepted."""
    response = await identity.stub().SignUp(
        identity_pb2.SignUpRequest(
            email=f"ada.{uuid.uuid4().hex[:8]}@example.com",
            password="violet kettle orbit 42 lanterns",
            display_name="Ada",
        ),
        timeout=10,
    )
    assert uuid.UUID(response.user.user_id)
