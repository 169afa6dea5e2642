"""schemathesis against the gateway's own /openapi.json: no 5xx and no response outside the
document (P2)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import httpx
import jsonschema_rs
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from helios.devstack.stack import Stack

PASSWORD = "correct horse battery"
SIGNED_IN_EXAMPLES = 8  # generated cases per operation and mode, signed in
ANONYMOUS_EXAMPLES = 3  # the same, without a session
# The fuzzer's own gateway replica and client address: its few thousand requests stay clear of the
# per-IP budget that the other end-to-end tests share through the limiter's common counters.
CLIENT_IP = "198.51.100.77"  # TEST-NET-2
REPLICA = {
    "HELIOS_RATE_LIMIT_PER_IP_PER_MINUTE": "1000000",
    "HELIOS_RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE": "1000000",
    "HELIOS_TRUSTED_PROXIES": '["127.0.0.1/32"]',
}
# Routes that make, end or lock the session the signed-in run rides on: anonymous run only.
# A wrong current password on password:change counts as a failed sign-in of the account and IP
# (identity's throttle), so fuzzing it signed in locks the run out by design; its signed-in
# behaviour is covered by identity's integration tests.
SESSION_ROUTES = frozenset(
    {
        "/api/auth/sign-up",
        "/api/auth/sign-in",
        "/api/auth/sign-out",
        "/api/auth/second-factor",
        "/api/auth/magic-link",
        "/api/auth/impersonate",
        "/api/auth/impersonate/stop",
        "/api/v1/identity/password:change",
    }
)
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
NDJSON = "application/x-ndjson"

Operation: TypeAlias = APIOperation[Any, Any, Any, Any]
AnyCase: TypeAlias = Case[Any]


@dataclass
class Findings:
    """Distinct problems, each with the first request that showed it and how often it recurred."""

    first: dict[tuple[str, ...], str] = field(default_factory=dict)
    count: dict[tuple[str, ...], int] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)  # requests sent, by operation

    def add(self, key: tuple[str, ...], report: str) -> None:
        self.first.setdefault(key, report)
        self.count[key] = self.count.get(key, 0) + 1

    def render(self, limit: int = 25) -> str:
        shown = [f"[{n}x] {self.first[key]}" for key, n in list(self.count.items())[:limit]]
        rest = len(self.count) - len(shown)
        return "\n\n".join(shown) + (f"\n\n... and {rest} more" if rest > 0 else "")


def _signed_in_headers(url: str) -> dict[str, str]:
    """Cookie, CSRF and Origin headers of a fresh user signed in through `url`. Cookies are sent
    as a header: they are Secure and the local gateway speaks plain HTTP."""
    forwarded = {"x-forwarded-for": CLIENT_IP}
    with httpx.Client(base_url=url, timeout=15, headers=forwarded) as client:
        email = f"fuzz-{uuid.uuid4().hex[:10]}@example.com"
        credentials = {"email": email, "password": PASSWORD}
        assert client.post("/api/auth/sign-up", json=credentials).status_code == 201
        signed_in = client.post("/api/auth/sign-in", json=credentials)
        assert signed_in.status_code == 200
        jar = {c.name: c.value for c in signed_in.cookies.jar if c.value}
    return {
        **forwarded,
        "cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
        "x-csrf-token": jar["helios_csrf"],
        "origin": url,
    }


def _content_type(response: Response) -> str:
    return ", ".join(
        v for k, vs in response.headers.items() if k.lower() == "content-type" for v in vs
    )


def _described(case: AnyCase, response: Response) -> str:
    request = response.request
    body = request.body or b""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    return (
        f"{case.operation.label}\n  request:  {request.method} {request.url}"
        + (f"\n            body {text[:300]}" if text else "")
        + f"\n  response: {response.status_code} {_content_type(response)} "
        f"{response.text[:300]}"
    )


def _ndjson_validator(
    operation: Operation, components: dict[str, Any]
) -> Callable[[Any], list[str]]:
    """Errors of one NDJSON line against the documented 200 item schema (schemathesis has no
    deserializer for NDJSON and would skip the body)."""
    schema = operation.definition.raw["responses"]["200"]["content"][NDJSON]["schema"]
    validator = jsonschema_rs.validator_for({**schema, "components": components})
    return lambda item: [error.message for error in validator.iter_errors(item)]


def _check_ndjson(
    case: AnyCase, response: Response, components: dict[str, Any], findings: Findings
) -> None:
    label = case.operation.label
    try:
        lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        findings.add((label, "ndjson-malformed"), f"{exc}\n{_described(case, response)}")
        return
    if lines and isinstance(lines[0], dict) and set(lines[0]) == {"error"}:
        findings.add(
            (label, "ndjson-error-first"),
            "a streaming RPC that failed before its first message answered 200 with the error "
            "as the first NDJSON line (its status belongs in the HTTP status):\n"
            + _described(case, response),
        )
        return
    errors = _ndjson_validator(case.operation, components)
    for line in lines:
        if isinstance(line, dict) and set(line) == {"error"}:
            continue  # a stream cut short after its first message: the error is its last line
        problems = errors(line)
        if problems:
            findings.add(
                (label, "ndjson-schema"),
                f"NDJSON line outside the documented schema: {problems[:3]}\n"
                f"{_described(case, response)}",
            )


def _exercise(
    case: AnyCase,
    base_url: str,
    headers: dict[str, str],
    session: requests.Session,
    components: dict[str, Any],
    findings: Findings,
) -> None:
    response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
    label = case.operation.label
    findings.calls[label] += 1
    if response.status_code >= 500 and response.status_code != 501:
        findings.add((label, "5xx", str(response.status_code)), _described(case, response))
    if response.status_code == 429:  # the run's own limits are out of reach: a set-up problem
        findings.add((label, "429"), f"rate limited: {_described(case, response)}")
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as group:
        for failure in group.exceptions:
            findings.add(
                (label, failure.title, str(response.status_code)),
                f"{failure.title}: {failure.message}\n{_described(case, response)}",
            )
    if response.status_code == 200 and _content_type(response).startswith(NDJSON):
        _check_ndjson(case, response, components, findings)


def _fuzz(
    operation: Operation,
    mode: GenerationMode,
    examples: int,
    exercise: Callable[[AnyCase], None],
) -> None:
    """`examples` cases of `mode`, deterministic, never shrunk (nothing raises into Hypothesis)."""

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: AnyCase) -> None:
        exercise(case)

    run()


def test_p2_schemathesis_finds_no_5xx_and_no_schema_violation(stack: Stack) -> None:
    """P2: schemathesis loads `/openapi.json` and sends every operation a bounded, deterministic
    set of generated requests (valid and invalid per the document), signed in (session cookie,
    CSRF token, Origin) and anonymous; the sign-up, sign-in and sign-out routes only anonymous,
    so the signed-in session survives the run. Every response must have a status code, a content
    type and a body the document describes (NDJSON streams line by line), and no status of 500 or
    above, except 501: UNIMPLEMENTED is the honest answer of an RPC whose feature has not landed
    yet. The cases go to a gateway replica of their own with limits the run cannot reach, from a
    client address of their own, so the rate limiter neither answers them nor spends the other
    tests' budget."""
    schema = schemathesis.openapi.from_url(f"{stack.gateway_url}/openapi.json", timeout=15)
    components = schema.raw_schema["components"]
    url = stack.start_gateway("gateway-fuzz", REPLICA)
    signed_in = _signed_in_headers(url)
    anonymous = {"x-forwarded-for": CLIENT_IP, "origin": url}
    findings = Findings()
    labels = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                findings.add(("document", str(result.err())), f"unusable: {result.err()}")
                continue
            operation = result.ok()
            labels.append(operation.label)
            runs = [(anonymous, ANONYMOUS_EXAMPLES)]
            if operation.path not in SESSION_ROUTES:
                runs.append((signed_in, SIGNED_IN_EXAMPLES))
            for headers, examples in runs:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                    def exercise(case: AnyCase, headers: dict[str, str] = headers) -> None:
                        _exercise(case, url, headers, session, components, findings)

                    _fuzz(operation, mode, examples, exercise)
    paths = schema.raw_schema["paths"].values()
    assert len(labels) == sum(len(item) for item in paths) > 60
    assert not [label for label in labels if not findings.calls[label]]  # all were called
    assert not findings.count, (
        f"{len(findings.count)} distinct problems in {findings.calls.total()} requests:\n\n"
        + findings.render()
    )
