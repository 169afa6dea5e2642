"""JSON log lines and the redaction filter: no secret, token, password or key is ever written
(conventions rule 10; E7 "secrets never logged", A1 passwords, S1 session tokens)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from helios.kernel.jsonlog import JsonFormatter, SecretRedactingFilter, configure_logging, redact

pytestmark = pytest.mark.unit

PASSWORD = "Tr0ub4dor-3-horse!"
TOKEN = "hls_" + "Zq9" * 14
BEARER = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIKx0Jv5m3Yl0ZkTq1Q2mS3cLr5y5Vd1Qh5Qx8mD0a9Kb\n"
    "-----END PRIVATE KEY-----"
)
PEM_BODY = "MC4CAQAwBQYDK2VwBCIEIKx0Jv5m3Yl0ZkTq1Q2mS3cLr5y5Vd1Qh5Qx8mD0a9Kb"
SECRETS = (PASSWORD, TOKEN, BEARER, PEM_BODY)


@pytest.fixture
def log_stream() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose only handler is the production pipeline (filter + formatter) on a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("identity"))
    handler.addFilter(SecretRedactingFilter())
    logger = logging.getLogger("helios.unit.jsonlog")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        yield logger, stream
    finally:
        logger.handlers.clear()
        logger.propagate = True


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_e7_no_secret_in_formatted_log_output(
    log_stream: tuple[logging.Logger, io.StringIO],
) -> None:
    """Message, args and extras each carry a password, a session token, a Bearer header and a
    PEM private key; none of them reaches the written line."""
    logger, stream = log_stream
    logger.warning(
        "sign-in password=%s token %s header Authorization: Bearer %s key %s",
        PASSWORD,
        TOKEN,
        BEARER,
        PEM,
        extra={
            "password": PASSWORD,
            "note": f"user typed password={PASSWORD} and got {TOKEN}",
            "headers": {"Authorization": f"Bearer {BEARER}", "x-request-id": "r-1"},
            "forwarded": f"Bearer {BEARER}",
            "key_material": PEM,
            "items": [TOKEN, "plain"],
            "request": {"body": {"new_password": PASSWORD, "email": "ada@example.com"}},
        },
    )
    output = stream.getvalue()
    for secret in SECRETS:
        assert secret not in output
    assert "PRIVATE KEY" not in output
    (line,) = _lines(stream)
    assert line["password"] == "[redacted]"
    assert line["headers"] == {"Authorization": "[redacted]", "x-request-id": "r-1"}
    assert line["items"] == ["[redacted]", "plain"]
    assert line["request"] == {"body": {"new_password": "[redacted]", "email": "ada@example.com"}}
    assert "[redacted]" in str(line["message"])


def test_e7_secret_in_exception_traceback_is_redacted(
    log_stream: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log_stream
    try:
        raise RuntimeError(f"upstream refused password={PASSWORD} with {TOKEN}")
    except RuntimeError:
        logger.exception("call failed")
    output = stream.getvalue()
    assert PASSWORD not in output
    assert TOKEN not in output
    (line,) = _lines(stream)
    assert "RuntimeError" in str(line["exception"])


def test_p1_line_carries_time_level_service_logger_and_message(
    log_stream: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log_stream
    logger.info("user %s signed in", "u-42", extra={"org_id": "org-7"})
    (line,) = _lines(stream)
    assert line["level"] == "INFO"
    assert line["service"] == "identity"
    assert line["logger"] == "helios.unit.jsonlog"
    assert line["message"] == "user u-42 signed in"
    assert line["org_id"] == "org-7"
    assert str(line["time"]).endswith("+00:00")
    assert "trace_id" not in line


def test_p5_line_carries_trace_and_span_ids_inside_a_span(
    log_stream: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log_stream
    tracer = TracerProvider().get_tracer("helios.unit")
    with tracer.start_as_current_span("op") as span:
        logger.info("inside")
        context = span.get_span_context()
    (line,) = _lines(stream)
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


def test_e7_configure_logging_installs_redacting_json_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging("audit", "WARNING")
        logging.getLogger("some.library").warning("connecting with password=%s", PASSWORD)
        logging.getLogger("some.library").info("below the level")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    err = capsys.readouterr().err
    (line,) = [json.loads(text) for text in err.splitlines()]
    assert line["service"] == "audit"
    assert line["message"] == "connecting with password=[redacted]"
    assert PASSWORD not in err


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"password={PASSWORD}", PASSWORD),
        (f'{{"password": "{PASSWORD}"}}', PASSWORD),
        (f"client_secret: '{PASSWORD}'", PASSWORD),
        (f"new_password={PASSWORD}&email=a@b.c", PASSWORD),
        (f"session_token={TOKEN}", TOKEN),
        (f"cookie: helios_session={TOKEN}", TOKEN),
        (f"api_key={PASSWORD}", PASSWORD),
        (f"otp=123456 {PASSWORD}", "123456"),
        (f"the token is {TOKEN}", TOKEN),
        ("ai token hla_" + "x" * 20, "hla_" + "x" * 20),
        (f"Authorization: Bearer {BEARER}", BEARER),
        (f"bearer {BEARER}", BEARER),
        (f"key:\n{PEM}\nend", PEM_BODY),
        (PEM.replace("PRIVATE KEY", "EC PRIVATE KEY"), PEM_BODY),
    ],
)
def test_e7_redact_removes_recognisable_secrets(text: str, secret: str) -> None:
    redacted = redact(text)
    assert secret not in redacted
    assert "[redacted]" in redacted


@pytest.mark.parametrize(
    "text",
    [
        "user u-42 signed in from 203.0.113.7",
        "email=ada@example.com org=acme",
        "hls_short",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    ],
)
def test_e7_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text
