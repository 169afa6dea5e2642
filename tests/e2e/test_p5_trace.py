"""One sign-up is one trace: gateway -> identity -> outbox relay -> NATS -> audit (P5)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable

import httpx
import psycopg

from helios.devstack.stack import Stack
from helios.kernel.testing.trace_collector import ReceivedSpan, TraceCollector

from .conftest import PASSWORD, Browser, sign_up, wait_for

SIGN_UP_RPC = "/helios.proto.identity.v1.IdentityService/SignUp"
SIGN_UP_ACTION = "identity.user.signUp"


def _sign_up(stack: Stack, headers: dict[str, str]) -> tuple[str, str]:
    """A new account through the gateway: (its e-mail, its user id)."""
    email = f"p5-{uuid.uuid4().hex[:10]}@example.com"
    reply = httpx.post(
        f"{stack.gateway_url}/api/auth/sign-up",
        json={"email": email, "password": PASSWORD},
        headers=headers,
        timeout=15,
    )
    assert reply.status_code == 201, reply.text
    return email, str(reply.json()["user"]["user_id"])


def _audited(db: psycopg.Connection, user_id: str) -> tuple[str, str]:
    """(event id, recorded trace id) of the sign-up's audit row, once audit stored it."""

    def row() -> tuple[str, str] | None:
        found = db.execute(
            "SELECT event_id, trace_id FROM audit.audit_log WHERE actor_id = %s AND action = %s",
            (user_id, SIGN_UP_ACTION),
        ).fetchone()
        return None if found is None else (str(found[0]), str(found[1]))

    audited: tuple[str, str] = wait_for(row, what="the sign-up's audit row")
    return audited


def _span(
    collector: TraceCollector, what: str, match: Callable[[ReceivedSpan], bool]
) -> ReceivedSpan:
    """The first received span that `match`es, waiting for the batches still on their way."""
    found: ReceivedSpan = wait_for(
        lambda: next((s for s in collector.spans() if match(s)), None), what=what
    )
    return found


def _event_spans(collector: TraceCollector, event_id: str) -> tuple[ReceivedSpan, ReceivedSpan]:
    """The relay's publish of the event and audit's ingest of it, found by the event id."""
    publish = _span(
        collector,
        "identity's outbox relay publishing the event",
        lambda s: (
            s.service == "helios-identity"
            and s.kind == "PRODUCER"
            and s.attributes.get("messaging.message.id") == event_id
        ),
    )
    ingest = _span(
        collector,
        "audit ingesting the event",
        lambda s: (
            s.service == "helios-audit"
            and s.kind == "CONSUMER"
            and s.attributes.get("messaging.message.id") == event_id
        ),
    )
    return publish, ingest


def test_p5_sign_up_spans_share_one_trace_from_gateway_through_nats_to_audit(
    stack: Stack, trace_collector: TraceCollector, db: psycopg.Connection
) -> None:
    """P5: the request comes with a W3C traceparent (as an instrumented ingress sends it); the
    gateway's server span continues it, identity's SignUp span is the gateway span's child, the
    relay's publish of the audit event is the SignUp span's child, and audit's ingest of that
    very event (matched by its id) is the publish's child: one trace id throughout, also the one
    recorded in the audit row. No span of the trace carries the password or the e-mail."""
    trace_id, ingress_span = secrets.token_hex(16), secrets.token_hex(8)
    email, user_id = _sign_up(stack, {"traceparent": f"00-{trace_id}-{ingress_span}-01"})
    event_id, recorded_trace_id = _audited(db, user_id)

    gateway = _span(
        trace_collector,
        "the gateway's span of the sign-up request",
        lambda s: s.service == "helios-gateway" and s.parent_span_id == ingress_span,
    )
    identity = _span(
        trace_collector,
        "identity's SignUp span under the gateway's",
        lambda s: (
            s.service == "helios-identity"
            and s.name == SIGN_UP_RPC
            and s.parent_span_id == gateway.span_id
        ),
    )
    publish, ingest = _event_spans(trace_collector, event_id)

    assert (gateway.kind, gateway.name) == ("SERVER", "POST /api/auth/sign-up")
    assert gateway.attributes["http.route"] == "/api/auth/sign-up"
    assert gateway.attributes["http.response.status_code"] == 201
    assert identity.kind == "SERVER"
    assert publish.attributes["messaging.destination.name"] == f"audit.identity.{SIGN_UP_ACTION}"
    assert {s.trace_id for s in (gateway, identity, publish, ingest)} == {trace_id}
    assert recorded_trace_id == trace_id
    assert publish.parent_span_id == identity.span_id
    assert ingest.parent_span_id == publish.span_id
    for span in trace_collector.spans():
        if span.trace_id == trace_id:
            shown = repr(span.attributes)
            assert PASSWORD not in shown, span
            assert email not in shown, span


def test_p5_gateway_starts_the_trace_of_a_request_without_traceparent(
    stack: Stack, trace_collector: TraceCollector, db: psycopg.Connection
) -> None:
    """P5: without an incoming traceparent the gateway's server span is the root of the trace
    that identity, the relay and audit continue."""
    _, user_id = _sign_up(stack, {})
    event_id, trace_id = _audited(db, user_id)

    publish, ingest = _event_spans(trace_collector, event_id)
    identity = _span(
        trace_collector,
        "the span the relay's publish continues",
        lambda s: s.span_id == publish.parent_span_id,
    )
    gateway = _span(
        trace_collector,
        "the span identity's SignUp continues",
        lambda s: s.span_id == identity.parent_span_id,
    )

    assert (identity.service, identity.name) == ("helios-identity", SIGN_UP_RPC)
    assert (gateway.service, gateway.kind, gateway.name) == (
        "helios-gateway",
        "SERVER",
        "POST /api/auth/sign-up",
    )
    assert gateway.parent_span_id == ""
    assert {s.trace_id for s in (gateway, identity, publish, ingest)} == {trace_id}
    assert ingest.parent_span_id == publish.span_id


def test_p5_an_org_creation_trace_reaches_authz_seeding_its_roles(
    stack: Stack, trace_collector: TraceCollector, db: psycopg.Connection
) -> None:
    """P5: the platform root creates an org through the gateway; authz's consumer that seeds the
    org's roles continues the same trace, as the child of the relay's publish of the event."""
    owner_id = Browser(stack).sign_in(sign_up(stack, "p5-owner"))["user"]["user_id"]
    root = Browser(stack)
    root.sign_in(stack.root_credentials["email"], stack.root_credentials["password"])
    created = root.post(
        "/api/v1/identity/orgs",
        json={"slug": f"p5-{uuid.uuid4().hex[:10]}", "name": "P5", "owner_user_id": owner_id},
    )
    assert created.status_code == 200, created.text
    org_id = created.json()["org"]["org_id"]

    def audited() -> tuple[str, str] | None:
        found = db.execute(
            "SELECT event_id, trace_id FROM audit.audit_log"
            " WHERE action = 'identity.org.create' AND org_id = %s",
            (org_id,),
        ).fetchone()
        return None if found is None else (str(found[0]), str(found[1]))

    event_id, trace_id = wait_for(audited, what="the org creation's audit row")
    publish, _ = _event_spans(trace_collector, event_id)
    seeding = _span(
        trace_collector,
        "authz seeding the org's roles",
        lambda s: (
            s.service == "helios-authz"
            and s.kind == "CONSUMER"
            and s.attributes.get("messaging.message.id") == event_id
        ),
    )
    assert seeding.trace_id == publish.trace_id == trace_id
    assert seeding.parent_span_id == publish.span_id
