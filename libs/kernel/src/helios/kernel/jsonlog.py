"""JSON log lines with trace ids, and a filter that redacts secrets before anything is written."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any

from opentelemetry import trace

__all__ = ["JsonFormatter", "SecretRedactingFilter", "configure_logging", "redact"]

_REDACTED = "[redacted]"
# Key names whose values are secrets wherever they appear (in extras, dicts or key=value text).
_SECRET_KEYS = "|".join(
    [
        "password",
        "passwd",
        "secret",
        "token",
        r"api[-_]?key",
        "authorization",
        "cookie",
        r"private[-_]?key",
        "otp",
        r"code[-_]?verifier",
        "assertion",
        "credential",
    ]
)
# After a secret key: a quoted value, or everything up to the end of the line (a value may
# contain spaces or punctuation, so stopping earlier could leak its tail).
_KEY_VALUE = re.compile(
    rf"(?i)([\"']?\b[\w-]*(?:{_SECRET_KEYS})[\w-]*[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\r\n]+)"
)
# Values that are secrets whatever their key: our token prefixes, bearer credentials, PEM keys,
# passwords in URLs.
_TOKEN_VALUE = re.compile(r"\bhl[a-z]_[A-Za-z0-9_-]{16,}")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/?#\s@]+:)[^@\s/]+@")
_SECRET_NAME = re.compile(rf"(?i){_SECRET_KEYS}")


def redact(text: str) -> str:
    """`text` with every recognisable secret replaced by '[redacted]'."""
    text = _PEM.sub(_REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + _REDACTED + "@", text)
    text = _BEARER.sub("Bearer " + _REDACTED, text)
    text = _KEY_VALUE.sub(lambda m: m.group(1) + _REDACTED, text)
    return _TOKEN_VALUE.sub(_REDACTED, text)


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_NAME.search(key):
        return _REDACTED
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    if isinstance(value, bytes | bytearray):
        return redact(bytes(value).decode("utf-8", errors="replace"))
    return redact(str(value))


_QUIET_LIBRARIES = ("sqlalchemy", "alembic", "nats", "hvac", "urllib3", "botocore", "boto3")

_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


class SecretRedactingFilter(logging.Filter):
    """Rewrites each record so that neither its message nor its extras carry a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key in set(record.__dict__) - _STANDARD_ATTRS:
            record.__dict__[key] = _redact_value(key, record.__dict__[key])
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace ids and extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = format(span.trace_id, "032x")
            line["span_id"] = format(span.span_id, "016x")
        for key in set(record.__dict__) - _STANDARD_ATTRS:
            line[key] = record.__dict__[key]
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send JSON lines to stderr through the redaction filter (the filter sits on the handler, so
    records from every library pass through it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(SecretRedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that log statement parameters or payloads at INFO/DEBUG stay at WARNING whatever
    # the level: SQL parameters carry hashes and sealed material, NATS payloads carry events.
    for noisy in _QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(logging.WARNING)
